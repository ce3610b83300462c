"""Periodic work run by `make scheduler`.

The jobs run in the scheduler's own process, against the database: the sweeper that resends what
the broker lost must not itself depend on the broker or on a worker being up. Every job claims its
rows with conditional updates, so two schedulers running at once do no work twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections

logger = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    every: float
    run: Callable[[], object]
    next_at: float = field(default=0.0)


JOBS: list[Job] = []


def job(name: str, *, every: float) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a periodic job (module import time; see IntegrationConfig.ready)."""

    def register(function: Callable[[], object]) -> Callable[[], object]:
        JOBS.append(Job(name=name, every=every, run=function))
        return function

    return register


def run_due(now: float) -> float:
    """Run every job that is due; returns when the next one is."""
    for entry in JOBS:
        if entry.next_at > now:
            continue
        try:
            result = entry.run()
            if result:
                logger.info("scheduler job %s: %s", entry.name, result)
        except Exception:
            logger.exception("scheduler job %s failed; it runs again next time", entry.name)
        finally:
            close_old_connections()
        entry.next_at = now + entry.every
    return min((entry.next_at for entry in JOBS), default=now + 1.0)


def loop(stop: Callable[[], bool]) -> None:
    while not stop():
        next_at = run_due(time.monotonic())
        while not stop() and time.monotonic() < next_at:
            time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
