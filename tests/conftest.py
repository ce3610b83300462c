"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands import flush

from common.recent import forget_all
from config.celery import app as celery_app
from tests.support import processes


@pytest.fixture(autouse=True)
def fresh_memos() -> Iterator[None]:
    """What a process reuses for a second (mode, paused components, tokens) does not outlive
    the test whose database rows it was read from."""
    forget_all()
    yield
    forget_all()


FLUSH_ATTEMPTS = 5


@pytest.fixture(autouse=True, scope="session")
def flush_outlives_a_deadlock() -> Iterator[None]:
    """Emptying the database between tests (one TRUNCATE of every table, in an order Django
    does not fix) can deadlock with a worker of a live stack still finishing a task that writes
    two of those tables. PostgreSQL then aborts one of them: when it is the flush, it is run
    again (the worker's transaction has ended by then); a worker's task is retried as any is."""
    original = flush.Command.handle

    def handle(self: flush.Command, **options: Any) -> None:
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return original(self, **options)
            except CommandError as error:
                if attempt == FLUSH_ATTEMPTS or "deadlock" not in str(error.__cause__):
                    raise

    flush.Command.handle = handle  # type: ignore[method-assign]
    try:
        yield
    finally:
        flush.Command.handle = original  # type: ignore[method-assign]


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Unit tests only: run tasks in-process. Flow tests use real workers instead."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_eager_propagates = False


@pytest.fixture(scope="session")
def clean_broker(django_db_setup: Any) -> None:
    """Start the run with empty queues: nothing a previous run left behind reaches our workers."""
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders = [Path(options[key]) for key in ("data_folder_in", "control_folder")]
        folders.append(Path(settings.CELERY_RESULT_BACKEND.removeprefix("file://")))
        for folder in folders:
            for leftover in folder.iterdir():
                leftover.unlink()
    else:
        celery_app.control.purge()


@pytest.fixture(scope="session")
def child_env(django_db_setup: Any, clean_broker: None) -> dict[str, str]:
    return processes.child_environment()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    processes.kill_leftovers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of channels-redis, of the Redis broker and of PostgreSQL's own behaviour run in the
    configurations that have them (CI's PostgreSQL + Redis runs), and are deselected, not
    skipped, in the others."""
    missing = {
        "redis": not settings.CELERY_BROKER_URL.startswith("redis"),
        "channels_redis": not settings.CHANNEL_LAYERS["default"]["BACKEND"].startswith(
            "channels_redis"
        ),
        "postgresql": "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    }
    absent = [marker for marker, is_missing in missing.items() if is_missing]
    kept = [item for item in items if not any(item.get_closest_marker(m) for m in absent)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
