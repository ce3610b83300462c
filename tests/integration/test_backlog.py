"""A copy that waits its turn in a moving queue is not sent again; one that is lost, or whose
component is down, is (integration/core/backlog.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from common import correlation
from config.env import VISIBILITY_TIMEOUT
from integration import bus
from integration.models import Delivery, Process, ProcessKind, Step, StepStatus
from integration.orchestrator import engine
from tests.integration.conftest import Broker
from tests.integration.helpers import register, trace_of
from tests.integration.test_bus import a_process, client_created

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
STARTED = ("integration", "client_registration", "action", "started", 1)


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    no_jitter = SimpleNamespace(uniform=lambda low, high: 1.0)
    monkeypatch.setattr(engine, "random", no_jitter)
    monkeypatch.setattr(bus, "random", no_jitter)


def crm_finished_a_step(seconds_ago: float = 1.0) -> None:
    """crm's workers got through something lately: its queue is moving."""
    other = Process.objects.create(
        kind=ProcessKind.CLIENT_REGISTRATION, mode="orchestration", client_id=uuid.uuid4()
    )
    Step.objects.create(
        process=other,
        position=0,
        name="create_client",
        component="crm",
        status=StepStatus.DONE,
        done_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def unanswered_command(sent_seconds_ago: float = 31.0) -> Step:
    process = register()
    step = Step.objects.get(process=process, status=StepStatus.SENT)
    Step.objects.filter(pk=step.id).update(
        sent_at=timezone.now() - timedelta(seconds=sent_seconds_ago),
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )
    return step


def sweep_steps(capture: Capture) -> int:
    with capture(execute=True):
        return engine.steps_sweep()


def test_a_command_waiting_in_a_moving_queue_waits_again_without_a_new_attempt(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given crm's command unanswered for 31 s, while crm's workers get through a queue that
    # still holds messages
    step = unanswered_command()
    crm_finished_a_step()
    broker.waiting["crm"] = 40
    broker.sent.clear()

    # when the sweeper runs
    sweep_steps(django_capture_on_commit_callbacks)

    # then nothing is sent again and no attempt is counted: the wait is one timeout longer
    step.refresh_from_db()
    assert broker.sent == []
    assert trace_of(step.process_id) == [
        STARTED,
        ("integration", "create_client", "command", "sent", 1),
    ]
    assert (step.status, step.attempts) == (StepStatus.SENT, 1)
    assert step.next_attempt_at is not None
    assert timedelta(seconds=29) < step.next_attempt_at - timezone.now() <= timedelta(seconds=30)


@pytest.mark.parametrize(
    ("moving", "waiting", "sent_seconds_ago"),
    [
        (True, 0, 31.0),  # the queue is empty: this copy is lost
        (False, 40, 31.0),  # crm finished nothing within the timeout: crm is down
        (True, 40, VISIBILITY_TIMEOUT + 1.0),  # past the broker's own redelivery horizon
    ],
    ids=["queue-empty", "component-down", "older-than-the-horizon"],
)
def test_a_command_lost_or_sent_to_a_component_that_is_down_is_sent_again(
    broker: Broker,
    django_capture_on_commit_callbacks: Capture,
    moving: bool,
    waiting: int,
    sent_seconds_ago: float,
) -> None:
    step = unanswered_command(sent_seconds_ago)
    if moving:
        crm_finished_a_step()
    else:
        crm_finished_a_step(seconds_ago=31.0)  # before the timeout's window
    broker.waiting["crm"] = waiting
    broker.sent.clear()

    sweep_steps(django_capture_on_commit_callbacks)

    step.refresh_from_db()
    assert [message.queue for message in broker.sent] == ["crm"]
    assert trace_of(step.process_id)[-2:] == [
        ("integration", "create_client", "retry", "timed_out", 1),
        ("integration", "create_client", "command", "sent", 2),
    ]
    assert (step.status, step.attempts) == (StepStatus.SENT, 2)


@pytest.mark.parametrize(("waiting", "sends"), [(40, 1), (0, 2)])
def test_an_unacknowledged_delivery_in_a_moving_queue_waits_and_a_lost_one_is_sent_again(
    broker: Broker, django_capture_on_commit_callbacks: Capture, waiting: int, sends: int
) -> None:
    # given a delivery to crm unacknowledged for 31 s, and crm's queue moving
    process = a_process()
    with correlation.bound(process.id):
        record = bus.publish(client_created(process.client_id), source="marketing")
    delivery = Delivery.objects.filter(event=record).first()
    assert delivery is not None
    Delivery.objects.filter(event=record).exclude(pk=delivery.pk).delete()
    now = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        component="crm",
        status="sent",
        sends=1,
        sent_at=now - timedelta(seconds=31),
        next_attempt_at=now - timedelta(seconds=1),
    )
    crm_finished_a_step()
    broker.waiting["crm"] = waiting
    broker.sent.clear()

    # when the sweeper runs
    with django_capture_on_commit_callbacks(execute=True):
        bus.deliveries_sweep()

    # then it waits one more redelivery timeout while the queue holds messages, and is sent
    # again when the queue is empty
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sends) == ("sent", sends)
    assert len(broker.sent) == sends - 1
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)
