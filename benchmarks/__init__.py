"""`make bench`: Ensemble's figures next to bare baselines on the same services."""
