"""The bare baselines: a minimal DRF app (gunicorn, 2 sync workers) and a 5-step Celery chain,
on the same database and broker as the product, so that the product's figures read as ratios."""
