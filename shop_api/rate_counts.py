"""Where the rate limit counts: the shared cache, or this process while the cache is away.

The count lives in Django's cache (Redis when configured) so that every web process counts
together. A cache that is down or paused must neither refuse the shop nor hold its requests: the
first failure (bounded by the cache's socket timeouts) sends the counting to this process for a
few seconds, and each web process then limits on its own until the cache answers again.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
_cache_down_until = 0.0
_lock = threading.Lock()
_local_counts: dict[tuple[str, int], int] = {}


def cache_suspected_down() -> bool:
    return time.monotonic() < _cache_down_until


def _trip_breaker() -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + BREAKER_SECONDS


def count_request(key: str, *, window_start: int, window: int) -> int:
    """Count one request in this window for this key; the count so far, this one included."""
    if not cache_suspected_down():
        try:
            return _count_in_cache(f"{key}:{window_start}", timeout=window + 5)
        except Exception as error:  # noqa: BLE001 - any cache failure: count here instead
            logger.warning("rate limit counts in this process: the cache failed: %s", error)
            _trip_breaker()
    return _count_in_process(key, window_start)


def _count_in_cache(key: str, *, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def _count_in_process(key: str, window_start: int) -> int:
    with _lock:
        for stale in [entry for entry in _local_counts if entry[1] < window_start]:
            del _local_counts[stale]
        count = _local_counts.get((key, window_start), 0) + 1
        _local_counts[(key, window_start)] = count
        return count
