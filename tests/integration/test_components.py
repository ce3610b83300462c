"""Component maintenance (operations.md `components`): a paused component's commands and
deliveries wait in the database — no attempt spent, never stuck — and go out in order on resume."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase
from django.utils import timezone

from integration import actions
from integration.core import monitoring
from integration.models import AuditEntry, Delivery, Process, Step
from integration.orchestrator import engine
from tests.integration.conftest import Broker
from tests.integration.helpers import deliver_all, register, trace_of

pytestmark = pytest.mark.django_db


def pause(component: str) -> None:
    actions.component_set(name=component, state="paused", by="user:ops")


def resume(component: str) -> int:
    return actions.component_set(name=component, state="running", by="user:ops")


def commands_to(broker: Broker, queue: str) -> list[str]:
    return [sent.args[0] for sent in broker.sent if sent.queue == queue]


def idle_for_long(process: Process) -> None:
    Process.objects.filter(pk=process.pk).update(
        last_activity_at=timezone.now() - timedelta(seconds=3600)
    )


# --- orchestration ----------------------------------------------------------------------------


def test_a_command_to_a_paused_component_is_held_and_spends_nothing(broker: Broker) -> None:
    pause("crm")

    process = register()

    step = Step.objects.get(process=process)
    assert (step.name, step.status, step.attempts, step.next_attempt_at) == (
        "create_client",
        "held",
        0,
        None,
    )
    assert commands_to(broker, "crm") == []
    assert trace_of(process.id) == [
        ("integration", "client_registration", "action", "started", 1),
        ("integration", "create_client", "command", "held", 1),
    ]


def test_held_work_is_neither_swept_nor_stuck(broker: Broker) -> None:
    pause("crm")
    process = register()
    idle_for_long(process)

    assert engine.steps_sweep() == 0
    assert monitoring.mark_stuck_processes() == 0
    assert Process.objects.get(pk=process.pk).status == "running"
    assert commands_to(broker, "crm") == []


def test_resume_sends_the_held_commands_in_the_order_they_were_made(broker: Broker) -> None:
    pause("crm")
    first = register(email="ada@example.com")
    second = register(email="grace@example.com")

    with TestCase.captureOnCommitCallbacks(execute=True):
        released = resume("crm")

    assert released == 2
    steps = [Step.objects.get(process=first), Step.objects.get(process=second)]
    assert commands_to(broker, "crm") == [str(steps[0].id), str(steps[1].id)]
    assert [(step.status, step.attempts) for step in steps] == [("sent", 1), ("sent", 1)]
    assert trace_of(first.id)[-1] == ("integration", "create_client", "command", "sent", 1)


def test_a_command_sent_before_the_pause_is_held_when_its_answer_is_due(broker: Broker) -> None:
    process = register()
    step = Step.objects.get(process=process)
    pause("crm")
    Step.objects.filter(pk=step.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))

    engine.steps_sweep()

    step.refresh_from_db()
    assert (step.status, step.attempts) == ("held", 1)  # no retry counted
    assert [entry[2:4] for entry in trace_of(process.id)][-1] == ("command", "held")


def test_a_copy_reaching_a_worker_of_a_paused_component_is_held() -> None:
    process = register()
    step = Step.objects.get(process=process)
    pause("crm")

    assert engine.step_execute(step_id=step.id) == "held: crm paused"

    assert Step.objects.get(pk=step.pk).status == "held"
    assert Process.objects.get(pk=process.pk).status == "running"


# --- choreography -----------------------------------------------------------------------------


def test_a_paused_component_holds_its_deliveries_and_the_process_waits(
    choreography: None,
) -> None:
    pause("sales")
    process = register()

    deliver_all()
    idle_for_long(process)

    held = set(Delivery.objects.filter(status="held").values_list("listener", flat=True))
    assert held and all(listener.startswith("sales.") for listener in held)
    assert monitoring.mark_stuck_processes() == 0
    assert Process.objects.get(pk=process.pk).status == "running"

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert resume("sales") == len(held)
    deliver_all()

    assert Process.objects.get(pk=process.pk).status == "completed"
    assert not Delivery.objects.filter(status="held").exists()


def test_resuming_a_component_leaves_a_listener_paused_on_its_own(choreography: None) -> None:
    actions.listener_set(name="sales.replicate_client", state="paused", by="user:ops")
    pause("sales")
    register()
    deliver_all()

    resume("sales")
    deliver_all()

    assert list(Delivery.objects.filter(status="held").values_list("listener", flat=True)) == [
        "sales.replicate_client"
    ]
    actions.listener_set(name="sales.replicate_client", state="enabled", by="user:ops")
    assert not Delivery.objects.filter(status="held").exists()


def test_a_listener_resumed_while_its_component_is_paused_keeps_waiting(
    choreography: None,
) -> None:
    actions.listener_set(name="sales.replicate_client", state="paused", by="user:ops")
    pause("sales")
    register()
    deliver_all()

    actions.listener_set(name="sales.replicate_client", state="enabled", by="user:ops")

    assert Delivery.objects.filter(listener="sales.replicate_client", status="held").count() == 1


# --- the command and the audit ----------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("components", *args, stdout=out)
    return out.getvalue()


def test_the_command_lists_states_and_what_each_component_holds() -> None:
    pause("crm")
    register()

    assert run().splitlines() == [
        "crm paused 1",
        "sales running 0",
        "correspondence running 0",
        "marketing running 0",
        "integration running 0",
    ]


def test_the_command_pauses_and_resumes_and_each_switch_is_audited(broker: Any) -> None:
    assert run("pause", "marketing") == "marketing paused\n"
    assert run("resume", "marketing") == "marketing running (sent 0 held)\n"

    assert list(
        AuditEntry.objects.order_by("at").values_list("actor", "action", "target", "detail")
    ) == [
        ("manage.py", "components.paused", "marketing", {"from": "running", "released": 0}),
        ("manage.py", "components.running", "marketing", {"from": "paused", "released": 0}),
    ]


def test_an_unknown_component_is_a_one_line_error() -> None:
    with pytest.raises(CommandError) as raised:
        run("pause", "billing")

    assert "billing" in str(raised.value)
    assert "\n" not in str(raised.value)


# --- the admin's switch -------------------------------------------------------------------------

SWITCHES = "/admin/integration/componentswitch/"


def test_the_admin_lists_the_components_and_pauses_and_resumes_one(admin_client: Any) -> None:
    page = admin_client.get(SWITCHES)
    assert page.status_code == 200
    assert b"Pause crm" in page.content

    paused = admin_client.post(SWITCHES, {"name": "crm", "state": "paused"})
    assert (paused.status_code, paused["Location"]) == (302, SWITCHES)
    assert run().splitlines()[0] == "crm paused 0"
    assert b"Resume crm" in admin_client.get(SWITCHES).content

    admin_client.post(SWITCHES, {"name": "crm", "state": "running"})
    assert list(AuditEntry.objects.order_by("at").values_list("action", "target")) == [
        ("components.paused", "crm"),
        ("components.running", "crm"),
    ]


def test_only_who_may_switch_components_can(client: Any, django_user_model: Any) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="x" * 12, is_staff=True)
    client.force_login(viewer)

    assert client.post(SWITCHES, {"name": "crm", "state": "paused"}).status_code == 403
    assert run().splitlines()[0] == "crm running 0"


def test_the_process_pages_say_what_a_held_process_waits_for(admin_client: Any) -> None:
    pause("crm")
    process = register()

    staff_page = admin_client.get(f"/processes/{process.id}/").content.decode()
    admin_page = admin_client.get(f"/admin/integration/process/{process.id}/change/").content
    resume("crm")

    assert "Waiting for crm (paused)" in staff_page
    assert b"Waiting for crm (paused)" in admin_page
    assert b"Waiting for crm" not in admin_client.get(f"/processes/{process.id}/").content
