"""Live pages: each web process feeds its websockets from the trace in the database.

A page follows one process (or the dashboard) through its web process's `Feed`, which looks at the
database every POLL_SECONDS — one query for every page it feeds — and tells the pages whose process
moved. So a page updates whoever wrote the entry: a worker, the scheduler, another web process.
A wake only makes the feed look sooner: an entry committed in this process wakes its feed directly,
and with channels-redis an entry committed anywhere wakes every web process through a channel-layer
group per process (and one for the dashboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.db.models import Max

from integration.models import Process, TraceEntry

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MIN_GAP_SECONDS = 0.05  # wakes closer together than this make one look
DASHBOARD_REFRESH_SECONDS = 10  # figures that move without a new entry (e.g. time) refresh anyway
SEND_TIMEOUT_SECONDS = 2.0
BREAKER_SECONDS = 3.0  # after a failed wake, the next ones are not tried for this long
DASHBOARD = "dashboard"
DASHBOARD_GROUP = "live.dashboard"
WAKE = {"type": "live.wake"}


def process_group(process_id: UUID | str) -> str:
    return f"live.process.{UUID(str(process_id)).hex}"


class Watcher(Protocol):
    """A page fed live: its key is a process id, or DASHBOARD."""

    key: str

    async def changed(self) -> None: ...


# --- the feed (runs on the web server's event loop) ---------------------------------------------


class Feed:
    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = {}
        self._marks: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._updates: set[asyncio.Task[None]] = set()  # held, or the loop may drop them

    def subscribe(self, watcher: Watcher) -> None:
        self._watchers.setdefault(watcher.key, set()).add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.key, set())
        watchers.discard(watcher)
        if not watchers:
            self._watchers.pop(watcher.key, None)
            self._marks.pop(watcher.key, None)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while self._watchers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                await self._look()
            except Exception:
                logger.exception("live feed: looking at the trace failed; trying again")
            await asyncio.sleep(MIN_GAP_SECONDS)

    async def _look(self) -> None:
        marks = await database_sync_to_async(marks_of)(list(self._watchers))
        moved: list[Watcher] = []
        for key, mark in marks.items():
            if self._marks.get(key) != mark:
                self._marks[key] = mark
                moved.extend(self._watchers.get(key, ()))
        for watcher in moved:  # each page updates at its own pace; the feed looks on
            update = asyncio.get_running_loop().create_task(watcher.changed())
            self._updates.add(update)
            update.add_done_callback(self._updated)

    def _updated(self, update: asyncio.Task[None]) -> None:
        self._updates.discard(update)
        if not update.cancelled() and update.exception() is not None:
            logger.warning("live feed: a page could not be updated: %r", update.exception())


def marks_of(keys: Iterable[str]) -> dict[str, Any]:
    """What tells that a page must be updated: each process's trace count and status; for the
    dashboard, the newest trace entry (and the clock, every DASHBOARD_REFRESH_SECONDS)."""
    keys = list(keys)
    process_ids = [key for key in keys if key != DASHBOARD]
    marks: dict[str, Any] = {
        str(pk): (count, status)
        for pk, count, status in Process.objects.filter(pk__in=process_ids).values_list(
            "id", "trace_count", "status"
        )
    }
    if DASHBOARD in keys:
        newest = TraceEntry.objects.aggregate(newest=Max("id"))["newest"]
        marks[DASHBOARD] = (newest, int(time.monotonic() // DASHBOARD_REFRESH_SECONDS))
    return marks


_feeds: dict[asyncio.AbstractEventLoop, Feed] = {}


def feed() -> Feed:
    """This event loop's feed (one per web process; tests may run several loops)."""
    loop = asyncio.get_running_loop()
    for other in [other for other in _feeds if other.is_closed()]:
        _feeds.pop(other, None)
    if loop not in _feeds:
        _feeds[loop] = Feed()
    return _feeds[loop]


# --- waking (from any thread, after commit) -----------------------------------------------------


def wake(process_id: UUID) -> None:
    """A process's trace moved: live pages look now rather than at their next poll. Never
    raises: a page that is not woken still sees the entry at its next look."""
    try:
        _wake_local()
        _wake_remote(process_id)
    except Exception:
        logger.debug("live wake failed", exc_info=True)


def _wake_local() -> None:
    for loop, local_feed in list(_feeds.items()):
        if not loop.is_closed():
            loop.call_soon_threadsafe(local_feed.wake)


_remote_down_until = 0.0


def _wake_remote(process_id: UUID) -> None:
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return  # one web process: the local wake reached every page it has
    if time.monotonic() < _remote_down_until:
        return  # the layer failed a moment ago: pages see the entry at their next poll
    groups = [process_group(process_id), DASHBOARD_GROUP]
    future = asyncio.run_coroutine_threadsafe(_send_wakes(layer, groups), _sender_loop())
    future.add_done_callback(_log_failure)


async def _send_wakes(layer: Any, groups: list[str]) -> None:
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        for group in groups:
            await layer.group_send(group, WAKE)


def _log_failure(future: Any) -> None:
    global _remote_down_until
    if not future.cancelled() and future.exception() is not None:
        _remote_down_until = time.monotonic() + BREAKER_SECONDS
        logger.debug("live wake not sent: %r", future.exception())


# The wakes of a process leave from one background event loop, so that the thread committing a
# trace entry (a worker's task, a request) never waits for the channel layer, and the layer keeps
# one connection instead of opening one per wake.
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():  # a forked worker starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-wake", daemon=True).start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def trace_written(sender: Any, process_id: UUID, **kwargs: Any) -> None:
    """Receiver of the core's `trace_written`: wake the pages once the entry is committed. Live
    pages poll the trace anyway; the wake only makes them look at once."""
    transaction.on_commit(lambda: wake(process_id), robust=True)
