"""The correlation id of the process being worked on, carried in a context variable.

It is set when a request starts a process or a worker picks up one of its messages, and read by
log records, outgoing Celery messages and trace entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def get() -> str | None:
    return _current.get()


def set(value: object | None) -> None:  # noqa: A001 - mirrors ContextVar.set
    _current.set(str(value) if value else None)


@contextmanager
def bound(value: object | None) -> Iterator[None]:
    token = _current.set(str(value) if value else None)
    try:
        yield
    finally:
        _current.reset(token)
