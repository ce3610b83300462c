"""Periodic work run by `make scheduler`.

The jobs run in the scheduler's own process, against the database: the sweeper that resends what
the broker lost must not itself depend on the broker or on a worker being up. Every job claims its
rows with conditional updates (SKIP LOCKED where rows are locked), so two schedulers running at
once do no work twice.

Each run of a job has a thread, and so a database connection, of its own: a job that hangs (on a
lock, a slow query) holds only itself. It is not started again while it runs; the others keep
their rhythm. PostgreSQL's lock and statement timeouts (config/env.py) end the hang itself, and
the job runs again at its next time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 5.0  # on SIGTERM, runs in progress get this long to commit


@dataclass
class Job:
    name: str
    every: float
    run: Callable[[], object]
    next_at: float = field(default=0.0)
    running: threading.Thread | None = field(default=None, compare=False, repr=False)
    overrun_reported: bool = field(default=False, compare=False, repr=False)


JOBS: list[Job] = []


def job(name: str, *, every: float) -> Callable[[Callable[[], object]], Callable[[], object]]:
    """Register a periodic job (module import time; see IntegrationConfig.ready)."""

    def register(function: Callable[[], object]) -> Callable[[], object]:
        JOBS.append(Job(name=name, every=every, run=function))
        return function

    return register


def run_once(entry: Job) -> None:
    """One run of one job. A failure is logged, and the job runs again at its next time; the
    connection the run used (this thread's own) is closed after it."""
    try:
        result = entry.run()
        if result:
            logger.info("scheduler job %s: %s", entry.name, result)
    except Exception:
        logger.exception("scheduler job %s failed; it runs again next time", entry.name)
    finally:
        close_connections()


def close_connections() -> None:
    connections.close_all()


def in_own_thread(entry: Job) -> threading.Thread | None:
    thread = threading.Thread(target=run_once, args=(entry,), name=f"job {entry.name}", daemon=True)
    thread.start()
    return thread


# How a due job is started (tests run it inline with `run_once`).
launch: Callable[[Job], threading.Thread | None] = in_own_thread


def _still_running(entry: Job) -> bool:
    return entry.running is not None and entry.running.is_alive()


def run_due(now: float) -> float:
    """Start every job that is due and not still running; returns when to look again."""
    for entry in JOBS:
        if entry.next_at > now:
            continue
        if _still_running(entry):
            if not entry.overrun_reported:
                entry.overrun_reported = True
                logger.warning("scheduler job %s is still running; the others go on", entry.name)
            continue
        entry.overrun_reported = False
        entry.next_at = now + entry.every
        entry.running = launch(entry)
    # A job overdue because it is still running is looked at again after a short poll.
    return min(
        (now + POLL_SECONDS if _still_running(e) and e.next_at <= now else e.next_at for e in JOBS),
        default=now + 1.0,
    )


def loop(stop: Callable[[], bool]) -> None:
    while not stop():
        next_at = run_due(time.monotonic())
        while not stop() and time.monotonic() < next_at:
            time.sleep(min(POLL_SECONDS, max(0.0, next_at - time.monotonic())))
    _wait_for_runs(time.monotonic() + STOP_GRACE_SECONDS)


def _wait_for_runs(deadline: float) -> None:
    for entry in JOBS:
        if entry.running is not None:
            entry.running.join(max(0.0, deadline - time.monotonic()))
