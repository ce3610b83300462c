"""The bare 5-step Celery chain: each step inserts one row. The baseline for a registration,
which is five component steps as well.

    celery -A benchmarks.bare.chain worker --concurrency 4
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.bare.settings")
django.setup()

from celery import Celery, chain  # noqa: E402

from benchmarks.bare.models import ChainStep  # noqa: E402

STEPS = 5
QUEUE = "bench_bare"

app = Celery("bench_bare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = QUEUE
# Celery's Django fixup closes the connection around every task unless told to keep it.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@app.task(name="bench.chain_step")
def chain_step(burst: str, chain_number: int, position: int) -> None:
    ChainStep._default_manager.create(burst=burst, chain=chain_number, position=position)


def start_chain(burst: str, chain_number: int) -> None:
    chain(*(chain_step.si(burst, chain_number, p) for p in range(1, STEPS + 1))).apply_async()
