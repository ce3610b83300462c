"""Live pages over websockets: who may follow what, what is sent, and that a page sees entries
written anywhere (polling the database) and sees them at once when woken."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import transaction

from integration import gateway
from integration.core.trace import trace_record
from integration.models import Process
from staff import live
from tests.support.waiting import wait_until
from tests.ui.sockets import Socket

pytestmark = pytest.mark.django_db(transaction=True)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def start_process(user: Any) -> Process:
    return gateway.client_register(
        **{"email": "live@example.com", "first_name": "Live", "last_name": "Page"},
        initiator=gateway.Initiator(user=user),
    )


def add_entry(process_id: UUID, status: str = "done") -> None:
    with transaction.atomic():
        trace_record(
            process_id=process_id, component="crm", name="create_client", kind="step", status=status
        )


async def connect(path: str, user: Any) -> tuple[Socket, bool, Any]:
    socket = Socket(path, user)
    connected, code = await socket.connect()
    return socket, connected, code


async def refused(path: str, user: Any) -> Any:
    _, connected, code = await connect(path, user)
    assert not connected
    return code


@pytest.fixture
def slow_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls too slow to matter: what arrives within a second came through a wake."""
    monkeypatch.setattr(live, "POLL_SECONDS", 30.0)


def test_a_process_page_gets_what_it_has_not_seen_then_each_new_entry(
    member: Callable[..., Any], slow_polls: None
) -> None:
    operator = member("Operations")
    process = start_process(member("Marketing"))

    async def scenario() -> None:
        # (a dashboard on the same feed renders at most once a second: it must not hold others)
        dashboard, _, _ = await connect("/ws/dashboard/", operator)
        await dashboard.receive_json_from(timeout=2)
        page, connected, _ = await connect(f"/ws/processes/{process.id}/?after=1", operator)
        assert connected
        first = await page.receive_json_from(timeout=2)
        assert (first["type"], first["status"], first["last_seq"]) == ("process", "running", 2)
        assert '<tr id="seq-2"' in first["rows"] and '<tr id="seq-1"' not in first["rows"]
        assert first["diagram"].startswith('<svg xmlns="http://www.w3.org/2000/svg"')

        started = time.monotonic()
        await database_sync_to_async(add_entry)(process.id)
        second = await page.receive_json_from(timeout=2)
        assert time.monotonic() - started < 1.0  # woken after commit, not at the next poll
        assert second["last_seq"] == 3
        assert second["rows"].count("<tr ") == 1 and '<tr id="seq-3"' in second["rows"]
        assert "create_client" in second["work"]
        await page.disconnect()
        await dashboard.disconnect()

    run(scenario)


def test_entries_committed_by_another_process_arrive_by_polling(
    member: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(live, "wake", lambda process_id: None)  # nobody tells this web process
    operator = member("Operations")
    process = start_process(operator)

    async def scenario() -> None:
        page, _, _ = await connect(f"/ws/processes/{process.id}/?after=2&status=running", operator)
        assert await page.receive_nothing(timeout=0.3)
        await database_sync_to_async(add_entry)(process.id, "done")
        update = await page.receive_json_from(timeout=2)
        assert (update["last_seq"], update["status"]) == (3, "running")
        await page.disconnect()

    run(scenario)


def test_the_status_moves_with_the_entry_that_moved_it(
    member: Callable[..., Any], slow_polls: None
) -> None:
    from integration.core.lifecycle import process_close

    operator = member("Operations")
    process = start_process(operator)

    async def scenario() -> None:
        page, _, _ = await connect(f"/ws/processes/{process.id}/?after=2&status=running", operator)
        await database_sync_to_async(process_close)(
            process_id=process.id, reason="done by hand", by="test"
        )
        update = await page.receive_json_from(timeout=2)
        assert update["status"] == "closed"
        assert "not yet" not in update["finished"]
        await page.disconnect()

    run(scenario)


def test_a_status_that_moved_without_a_new_entry_still_reaches_the_page(
    member: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A page can show every entry with the status from before the last commit: the page sends
    # the status it shows, and gets the new one though no entry came after its last.
    monkeypatch.setattr(live, "POLL_SECONDS", 0.1)
    operator = member("Operations")
    process = start_process(operator)

    async def scenario() -> None:
        page, _, _ = await connect(f"/ws/processes/{process.id}/?after=2&status=running", operator)
        assert await page.receive_nothing(timeout=0.3)
        await database_sync_to_async(Process.objects.filter(pk=process.id).update)(
            status="completed"
        )
        update = await page.receive_json_from(timeout=2)
        assert (update["status"], update["last_seq"], update["rows"].strip()) == (
            "completed",
            2,
            "",
        )
        assert await page.receive_nothing(timeout=0.3)  # and only once
        await page.disconnect()

    run(scenario)


def test_a_process_page_reads_its_trace_before_its_status(member: Callable[..., Any]) -> None:
    # The other way round, a step committed between the two reads would show its entries with
    # the status from before it, and the live page would wait for entries that never come.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from staff import pages

    process = start_process(member("Operations"))
    with CaptureQueriesContext(connection) as queries:
        page = pages.process_page(process_id=process.id)

    tables = [q["sql"].split(" FROM ")[1].split()[0] for q in queries.captured_queries[:2]]
    assert tables == ['"integration_traceentry"', '"integration_process"']
    assert (page.last_seq, page.process.status) == (2, "running")


def test_who_may_follow_a_process(member: Callable[..., Any]) -> None:
    from django.contrib.auth.models import AnonymousUser

    starter = member("Marketing")
    process = start_process(starter)
    path = f"/ws/processes/{process.id}/"
    others = [AnonymousUser(), member("Marketing", "other-marketer"), member("Sales")]
    operator = member("Operations")

    async def scenario() -> None:
        for user in others:
            assert await refused(path, user) == 4403
        assert await refused(f"/ws/processes/{Process().id}/", operator) == 4403
        page, connected, _ = await connect(path, starter)  # the person who started it
        assert connected
        await page.disconnect()

    run(scenario)


def test_the_dashboard_is_sent_to_operations_only(
    member: Callable[..., Any], slow_polls: None
) -> None:
    operator = member("Operations")
    marketer = member("Marketing")

    async def scenario() -> None:
        assert await refused("/ws/dashboard/", marketer) == 4403
        dashboard, connected, _ = await connect("/ws/dashboard/", operator)
        assert connected
        first = await dashboard.receive_json_from(timeout=2)
        assert first["type"] == "dashboard" and "Processes by status and mode" in first["html"]

        await database_sync_to_async(start_process)(operator)
        second = await dashboard.receive_json_from(timeout=3)  # at most one render a second
        assert second["html"] != first["html"]
        assert "client_registration" not in second["html"]  # names, not codes
        await dashboard.disconnect()

    run(scenario)


def test_a_trace_entry_wakes_live_pages_only_once_committed(
    member: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[UUID] = []
    monkeypatch.setattr(live, "wake", woken.append)
    process = start_process(member("Marketing"))
    woken.clear()

    with transaction.atomic():
        trace_record(process_id=process.id, component="crm", name="x", kind="step", status="done")
        assert woken == []

    assert woken == [process.id]


def test_a_failing_channel_layer_never_fails_the_writer(
    member: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise ConnectionError("no channel layer")

    monkeypatch.setattr(live, "get_channel_layer", broken)
    process = start_process(member("Marketing"))

    add_entry(process.id)

    assert Process.objects.get(pk=process.id).trace_count == 3


@pytest.mark.channels_redis
def test_with_channels_redis_an_entry_written_elsewhere_wakes_the_page(
    member: Callable[..., Any], slow_polls: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "_wake_local", lambda: None)  # as if written by another process
    operator = member("Operations")
    process = start_process(operator)

    async def scenario() -> None:
        page, _, _ = await connect(f"/ws/processes/{process.id}/?after=2&status=running", operator)
        # The page joins the feed only once its group subscription has reached Redis; the
        # waiting runs in a thread so that this loop goes on serving the page meanwhile.
        feed = live.feed()
        await asyncio.to_thread(wait_until, lambda: str(process.id) in feed._watchers)
        started = time.monotonic()
        await database_sync_to_async(add_entry)(process.id)
        update = await page.receive_json_from(timeout=2)
        assert time.monotonic() - started < 1.0
        assert update["last_seq"] == 3
        await page.disconnect()

    run(scenario)


class FailingLayer:
    """A channel layer whose server is down."""

    def __init__(self) -> None:
        self.sends = 0

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sends += 1
        raise ConnectionError("the channel layer is down")


def test_a_failing_channel_layer_is_left_alone_for_a_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = FailingLayer()
    monkeypatch.setattr(live, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(live, "_remote_down_until", 0.0)

    live.wake(uuid.uuid4())
    wait_until(lambda: live._remote_down_until != 0.0, timeout=5)
    live.wake(uuid.uuid4())
    # Wakes leave from one event loop in order: once a later no-op has run there, a send the
    # second wake had queued would have been tried.
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), live._sender_loop()).result(timeout=5)

    assert layer.sends == 1
    assert live._remote_down_until > time.monotonic()
