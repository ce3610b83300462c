"""What a process may reuse for a moment (RECENT_MAX_AGE, a second by default): settings that live
in the database (the runtime mode, paused components) and shop tokens, read on every request or
step. A change made in this process is seen at once (`forget`); one made in another process,
within that moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings

Value = TypeVar("Value")

MAX_ENTRIES = 1024  # tokens are few; anything beyond this is a sign of misuse, not a workload


_every: list[Recent[Any]] = []


def forget_all() -> None:
    """Every memo of this process forgets (tests, between one another)."""
    for memo in _every:
        memo.forget()


class Recent(Generic[Value]):
    """A per-process memo of values by key, each kept for at most RECENT_MAX_AGE seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, Value]] = {}
        _every.append(self)

    def get(self, key: str, load: Callable[[], Value]) -> Value:
        now = self._clock()
        with self._lock:
            kept = self._values.get(key)
        if kept is not None and now - kept[0] < settings.RECENT_MAX_AGE:
            return kept[1]
        value = load()
        with self._lock:
            if len(self._values) >= MAX_ENTRIES:
                self._values.clear()
            self._values[key] = (now, value)
        return value

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._values.clear()
            else:
                self._values.pop(key, None)
