"""Monitoring: a running process with work pending and no trace entry for STUCK_AFTER is stuck;
activity brings it back to running."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from integration import bus
from integration.core import monitoring
from integration.models import Delivery, Process, Step
from integration.orchestrator import engine
from tests.integration.helpers import details_of, register, trace_of

pytestmark = pytest.mark.django_db

STARTED = ("integration", "client_registration", "action", "started", 1)
SENT = ("integration", "create_client", "command", "sent", 1)
STUCK = ("integration", "client_registration", "failure", "stuck", 1)
RUNNING = ("integration", "client_registration", "action", "running", 1)


def idle(process: Process, seconds: float) -> None:
    Process.objects.filter(pk=process.id).update(
        last_activity_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_process_idle_with_work_pending_is_marked_stuck() -> None:
    # given a registration whose command has had no answer for over STUCK_AFTER
    process = register()
    idle(process, 301)

    # when the monitor runs (twice)
    marked = monitoring.mark_stuck_processes()
    again = monitoring.mark_stuck_processes()

    # then it is stuck once, and the trace says for how long it was idle
    process.refresh_from_db()
    assert (marked, again) == (1, 0)
    assert (process.status, process.finished_at) == ("stuck", None)
    assert trace_of(process.id) == [STARTED, SENT, STUCK]
    assert 301 <= details_of(process.id)[-1]["idle_seconds"] < 303


def test_a_recently_active_process_is_not_stuck() -> None:
    process = register()
    idle(process, 299)

    assert monitoring.mark_stuck_processes() == 0

    process.refresh_from_db()
    assert process.status == "running"


def test_an_idle_process_without_open_work_is_not_stuck() -> None:
    # given a running process whose step is done and which has no delivery open
    process = register()
    Step.objects.filter(process=process).update(status="done")
    idle(process, 1000)

    assert monitoring.mark_stuck_processes() == 0

    process.refresh_from_db()
    assert process.status == "running"


@pytest.mark.parametrize("status", ["failed", "completed", "closed"])
def test_only_running_processes_become_stuck(status: str) -> None:
    process = register()
    Process.objects.filter(pk=process.id).update(status=status, finished_at=timezone.now())
    idle(process, 1000)

    assert monitoring.mark_stuck_processes() == 0


def test_activity_brings_a_stuck_orchestrated_process_back_to_running() -> None:
    # given a stuck registration
    process = register()
    idle(process, 301)
    monitoring.mark_stuck_processes()

    # when crm answers at last
    engine.step_execute(step_id=Step.objects.get(process=process).id)

    # then the process runs again from the moment the work reached it
    process.refresh_from_db()
    assert process.status == "running"
    assert trace_of(process.id) == [
        STARTED,
        SENT,
        STUCK,
        RUNNING,
        ("crm", "create_client", "step", "done", 1),
        ("integration", "open_account", "command", "sent", 1),
    ]
    assert details_of(process.id)[3] == {"reason": "activity", "by": "integration"}


def test_a_choreographed_process_waiting_for_a_delivery_is_stuck_then_woken(
    choreography: Any,
) -> None:
    # given a registration whose ClientRegistered has not reached crm for over STUCK_AFTER
    process = register()
    idle(process, 400)

    # when the monitor runs, then crm takes the event (ClientCreated goes to four others)
    assert monitoring.mark_stuck_processes() == 1
    bus.deliver(delivery_id=Delivery.objects.get(process=process).id)

    # then it was stuck, and the delivery woke it up as it arrived
    process.refresh_from_db()
    assert process.status == "running"
    assert trace_of(process.id) == [
        STARTED,
        ("integration", "ClientRegistered", "event", "published", 1),
        STUCK,
        RUNNING,
        ("crm", "ClientCreated", "event", "published", 1),
        ("crm", "ClientRegistered", "delivery", "done", 1),
    ]


def test_the_monitor_looks_at_a_limited_number_per_run() -> None:
    processes = [register(email=f"c{n}@example.com") for n in range(3)]
    for process in processes:
        idle(process, 500)

    assert monitoring.mark_stuck_processes(limit=2) == 2
    assert monitoring.mark_stuck_processes(limit=2) == 1
    assert set(Process.objects.values_list("status", flat=True)) == {"stuck"}
