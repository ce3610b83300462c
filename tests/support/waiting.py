"""Waiting for something another process or thread does: the one polling loop of the suite.

A test that waits asks for a positive, observable sign (a row, a status, a trace entry) instead of
sleeping a fixed time and hoping the system got there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.db import close_old_connections

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.02,
    describe: Callable[[], object] | None = None,
    *,
    close_connections: bool = False,
) -> T:
    """Call `predicate` until it returns a truthy value, and return that value.

    After `timeout` seconds raise AssertionError, with what `describe()` returns (the state the
    failure should show). `close_connections` calls django.db.close_old_connections() between
    tries, as a worker's request cycle would, for a test that watches rows other processes write.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
        if close_connections:
            close_old_connections()
    message = f"{_name(predicate)} was not true within {timeout:g}s"
    if describe is not None:
        message += f":\n{describe()}"
    raise AssertionError(message)


def _name(predicate: Callable[..., object]) -> str:
    name = getattr(predicate, "__name__", "")
    return "the condition" if name in ("", "<lambda>") else name
