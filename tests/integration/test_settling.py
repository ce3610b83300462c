"""The last deliveries of a choreographed process settling at the same moment, each in its own
transaction on its own connection: exactly one of them completes the process.

Whether anything is left open must be asked after the process row's lock is granted: a read taken
before (or in the statement that waits for the lock) would not see the other delivery, settled
and committed while it waited, and neither would complete the process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from integration import bus
from integration.core import lifecycle
from integration.models import Delivery, EventRecord, Process, ProcessKind, TraceEntry
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def two_open_deliveries() -> tuple[Process, list[Delivery]]:
    """A choreographed process whose only open deliveries are two of one event, to listeners
    nobody registered (each is skipped when delivered: settled without an effect)."""
    process = Process.objects.create(
        kind=ProcessKind.CLIENT_REGISTRATION, mode="choreography", client_id=uuid.uuid4()
    )
    event = EventRecord.objects.create(
        name="ClientCreated", source="crm", process=process, client_id=process.client_id
    )
    deliveries = [
        Delivery.objects.create(
            event=event,
            process=process,
            listener=f"{component}.gone",
            component=component,
            status="sent",
        )
        for component in ("sales", "marketing")
    ]
    return process, deliveries


def in_thread(work: Callable[[], Any], failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - shown by the test's assertion
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def transactions_waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def test_the_last_two_deliveries_settled_at_once_complete_the_process_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, (first, second) = two_open_deliveries()
    holding, release = threading.Event(), threading.Event()
    wake = lifecycle.process_wake

    def wake_and_hold(*, process: Process) -> None:
        """The first delivery saw the second open: it holds the process row's lock (and its
        uncommitted outcome) until the second is waiting for that lock."""
        wake(process=process)
        if threading.current_thread() is first_thread:
            holding.set()
            assert release.wait(10), "never released"

    monkeypatch.setattr(lifecycle, "process_wake", wake_and_hold)
    failures: list[BaseException] = []
    outcomes: dict[str, str] = {}

    # given the first delivery settled, its transaction holding the process row
    first_thread = in_thread(
        lambda: outcomes.setdefault("first", bus.deliver(delivery_id=first.id)), failures
    )
    assert holding.wait(10), failures
    # when the second settles meanwhile (waiting for the row), and the first then commits
    second_thread = in_thread(
        lambda: outcomes.setdefault("second", bus.deliver(delivery_id=second.id)), failures
    )
    wait_until(transactions_waiting_on_a_lock, describe=lambda: failures)
    release.set()
    first_thread.join(10)
    second_thread.join(10)

    # then the second sees the first settled, and completes the process: once
    assert failures == []
    assert outcomes == {"first": "skipped", "second": "skipped"}
    process.refresh_from_db()
    assert process.status == "completed"
    assert list(
        TraceEntry.objects.filter(process=process, kind="action").values_list("status", flat=True)
    ) == ["completed"]
    assert sorted(Delivery.objects.filter(process=process).values_list("status", flat=True)) == [
        "skipped",
        "skipped",
    ]
