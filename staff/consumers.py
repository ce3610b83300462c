"""Websocket consumers: the live process page and the live dashboard, fed by this web process's
`live.Feed` from the trace in the database (see integration/live.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer
from django.template.loader import render_to_string

from integration.models import Process, ProcessStatus
from staff import live, pages
from staff.teams import VIEW_PROCESSES

FORBIDDEN = 4403
DASHBOARD_MIN_INTERVAL = 1.0  # the figures are aggregates: at most one render a second


class StaffConsumer(JsonWebsocketConsumer):
    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            self.close(code=FORBIDDEN)
            return
        self.accept()


class PingConsumer(StaffConsumer):
    """Answers each message with `pong`: lets operators and tests see the websocket path work."""

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"type": "pong", "echo": content})


# --- live pages ---------------------------------------------------------------------------------


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """A page fed by the feed: subscribes once allowed, and is woken through its channel-layer
    group by entries committed in other processes."""

    key: str
    group: str

    async def connect(self) -> None:
        self._lock = asyncio.Lock()
        self._subscribed = False
        if not await database_sync_to_async(self.allowed)():
            await self.close(code=FORBIDDEN)
            return
        await self.accept()
        if self.channel_layer is not None:
            await self.channel_layer.group_add(self.group, self.channel_name)
        live.feed().subscribe(self)
        self._subscribed = True
        await self.changed()  # what happened since the page was rendered

    async def disconnect(self, code: int) -> None:
        if not self._subscribed:
            return
        live.feed().unsubscribe(self)
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def live_wake(self, message: dict[str, Any]) -> None:
        live.feed().wake()

    def allowed(self) -> bool:
        raise NotImplementedError

    async def changed(self) -> None:
        raise NotImplementedError


class ProcessConsumer(LiveConsumer):
    """/ws/processes/<id>/?after=<seq>: the entries after `after`, the status, the diagram."""

    async def connect(self) -> None:
        self.process_id = UUID(str(self.scope["url_route"]["kwargs"]["process_id"]))
        self.key = str(self.process_id)
        self.group = live.process_group(self.process_id)
        self.after = _after(self.scope.get("query_string", b""))
        self.status = _shown_status(self.scope.get("query_string", b""))
        await super().connect()

    def allowed(self) -> bool:
        user = self.scope.get("user")
        process = Process.objects.filter(pk=self.process_id).first()
        return user is not None and process is not None and pages.may_follow(user, process)

    async def changed(self) -> None:
        async with self._lock:
            update = await database_sync_to_async(process_update)(
                self.process_id, self.after, self.status
            )
            if update is not None:
                self.after, self.status = update["last_seq"], update["status"]
                await self.send_json(update)


class DashboardConsumer(LiveConsumer):
    """/ws/dashboard/: the figures, re-rendered when the trace moves."""

    key = live.DASHBOARD
    group = live.DASHBOARD_GROUP

    async def connect(self) -> None:
        self._sent = ""
        self._last_render = 0.0
        self._pending = False
        await super().connect()

    def allowed(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.has_perm(VIEW_PROCESSES))

    async def changed(self) -> None:
        if self._pending:
            return  # a render is already on its way and will see this change too
        self._pending = True
        async with self._lock:
            wait = self._last_render + DASHBOARD_MIN_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._pending = False  # changes from now on need a render of their own
            html = await database_sync_to_async(dashboard_html)()
            self._last_render = time.monotonic()
            if html != self._sent:
                self._sent = html
                await self.send_json({"type": "dashboard", "html": html})


def _shown_status(query_string: bytes) -> str | None:
    """The status the page shows (`?status=`), or None when it does not say."""
    value = parse_qs(query_string.decode("latin-1")).get("status", [""])[0]
    return value if value in ProcessStatus.values else None


def _after(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin-1")).get("after", ["0"])
    try:
        return max(0, int(values[0]))
    except ValueError:
        return 0


# --- what is sent (rendered from the same templates as the pages) -------------------------------


def process_update(
    process_id: UUID, after: int, status: str | None = None
) -> dict[str, Any] | None:
    """The page's update when entries came after `after`, or the status is no longer `status`;
    None when neither."""
    if not pages.trace_of(process_id=process_id, after=after).exists():
        current = Process.objects.filter(pk=process_id).values_list("status", flat=True).first()
        if current is None or current == status:
            return None
    page = pages.process_page(process_id=process_id)
    new = [entry for entry in page.trace if entry.seq > after]
    context = {"page": page}
    return {
        "type": "process",
        "status": page.process.status,
        "last_seq": page.last_seq,
        "rows": render_to_string("staff/_trace_rows.html", {"entries": new}),
        "diagram": str(page.diagram),
        "work": render_to_string("staff/_process_work.html", context),
        "finished": render_to_string("staff/_finished.html", context).strip(),
    }


def dashboard_html() -> str:
    figures = pages.dashboard_figures()
    return render_to_string("staff/_dashboard_figures.html", {"figures": figures})
