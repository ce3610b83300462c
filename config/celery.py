"""The Celery app: one queue per component, JSON only, late acks.

A component's worker consumes its command queue and its lookup queue (`<component>.lookup`), so
that a backlog of commands never makes a component look down to a details lookup.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery, signals
from django import db
from kombu import Queue

from common import correlation
from common.components import COMPONENTS
from common.warm_up import compile_lazy_patterns
from config import kombu_filesystem, kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
kombu_filesystem.install()
kombu_redis.install()


class CelerySettings(Mapping[str, Any]):
    """Django's CELERY_* settings as a plain mapping, taken when Celery first reads its settings
    (Django's settings are not read at import: config/asgi.py sets the pool size before they are).

    Celery reads its settings on every publish and every task; read through Django's settings
    object (`config_from_object("django.conf:settings")`), each one left at Celery's default was
    a failed attribute lookup, an exception raised and caught, every time."""

    def __init__(self) -> None:
        self._values: dict[str, Any] | None = None

    def _taken(self) -> dict[str, Any]:
        if self._values is None:
            from django.conf import settings

            names = [name for name in dir(settings) if name.startswith("CELERY_")]
            self._values = {name: getattr(settings, name) for name in names}
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._taken()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._taken())

    def __len__(self) -> int:
        return len(self._taken())


LOOKUP_SUFFIX = ".lookup"


def lookup_queue(component: str) -> str:
    return f"{component}{LOOKUP_SUFFIX}"


def queues_for(components: list[str]) -> list[str]:
    """The broker queues a worker for these components consumes."""
    names: list[str] = []
    for component in components:
        names += [component, lookup_queue(component)]
    return names


app = Celery("ensemble")
app.config_from_object(CelerySettings(), namespace="CELERY")
# A lookup is consumed without acknowledgement: its asker waits for the answer under a deadline of
# a few seconds, so a lookup lost with its worker is one the asker has stopped waiting for, and
# a broker's redelivery (an hour later, for Redis) would answer nobody. Acknowledging one cost
# the Redis transport two round trips (its unacked index written on receipt, cleared on ack).
# How many lookups a worker holds at once is bounded by the askers, each waiting for its own.
app.conf.task_queues = [
    Queue(name, no_ack=name.endswith(LOOKUP_SUFFIX)) for name in queues_for(list(COMPONENTS))
]
# A message a worker cannot run is logged and set aside; the worker goes on.
app.conf.worker_consumer = "config.worker_consumer:SetAsideConsumer"
app.autodiscover_tasks()
# Celery's Django fixup closes the database connections after every task and, in a prefork
# child, its whole connection pool: each task then made a new PostgreSQL connection (a server
# process started for every step, a third of a worker's time). With reuse on, the fixup leaves
# the pool alone (it still renews it every 2,000 tasks), and each task gives its connection back
# to the pool when it ends, as a web request does; one left unusable is closed instead.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@signals.worker_init.connect
def _warm_up(**_: Any) -> None:
    """In the worker's main process, before the pool forks its children."""
    compile_lazy_patterns()


@signals.before_task_publish.connect
def _carry_correlation_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    current = correlation.get()
    if headers is not None and current and "correlation_id" not in headers:
        headers["correlation_id"] = current


@signals.task_prerun.connect
def _adopt_correlation_id(task: Any = None, **_: Any) -> None:
    value = getattr(task.request, "correlation_id", None) if task else None
    correlation.set(value)


@signals.task_postrun.connect
def _forget_correlation_id(**_: Any) -> None:
    correlation.set(None)


@signals.task_postrun.connect
def _give_connections_back(task: Any = None, **_: Any) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return  # run in its caller's process: the caller's connection, the caller's business
    for connection in db.connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
