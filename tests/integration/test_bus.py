"""The event bus, one delivery at a time in this process: publishing, delivering, retries, dead
deliveries, the sweeper, and people's retries, replays and listener switches."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from common import correlation
from common.errors import ApplicationError, NotFound
from correspondence import services as correspondence_services
from correspondence.models import ERASED_RECIPIENT, Message
from crm import handlers as crm_handlers
from crm import services as crm_services
from crm.models import Client, Communication
from integration import actions, bus, gateway
from integration.events import ClientCreated
from integration.models import (
    AuditEntry,
    Delivery,
    ErasedClientId,
    EventRecord,
    Process,
    ProcessedMessage,
    ProcessKind,
)
from marketing import services as marketing_services
from sales import services as sales_services
from sales.models import CommunicationReplica, CustomerReplica
from tests.correspondence.mail import TransactionWatchingBackend
from tests.integration.conftest import Broker, Sent
from tests.integration.helpers import deliver_all, details_of, overdue, register, trace_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("choreography")]

Capture = Callable[..., Any]
CLIENT_CREATED_LISTENERS = [
    "correspondence.remember_recipient",
    "correspondence.send_welcome_email",
    "marketing.join_audience",
    "sales.replicate_client",
]


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus, "random", SimpleNamespace(uniform=lambda low, high: 1.0))


def started() -> tuple[Any, ...]:
    return ("integration", "client_registration", "action", "started", 1)


def published(component: str, event: str) -> tuple[Any, ...]:
    return (component, event, "event", "published", 1)


def delivered(
    component: str, event: str, status: str = "done", attempt: int = 1
) -> tuple[Any, ...]:
    return (component, event, "delivery", status, attempt)


def finished(status: str) -> tuple[Any, ...]:
    return ("integration", "client_registration", "action", status, 1)


def a_delivery(delivery: Delivery) -> Sent:
    process = str(delivery.process_id) if delivery.process_id else None
    return Sent(bus.DELIVER_TASK, [str(delivery.id)], delivery.component, process)


def client_created(client_id: uuid.UUID | None = None, version: int = 1) -> ClientCreated:
    return ClientCreated(
        client_id=str(client_id or uuid.uuid4()),
        client_version=version,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="",
        company="",
        marketing_consent=False,
        registered_at="2026-01-01T00:00:00+00:00",
    )


def a_process() -> Process:
    return Process.objects.create(
        kind=ProcessKind.CLIENT_REGISTRATION, mode="choreography", client_id=uuid.uuid4()
    )


def crm_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> Any:
        raise RuntimeError("crm is down")

    monkeypatch.setattr(crm_services, "client_create", refuse)


def the_delivery(process: Process) -> Delivery:
    return Delivery.objects.get(process=process)


# --- publishing -----------------------------------------------------------------------------------


def test_publish_makes_one_delivery_per_enabled_listener_held_for_paused_none_for_disabled(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given one listener of ClientCreated paused and one disabled
    actions.listener_set(name="marketing.join_audience", state="paused", by="test")
    actions.listener_set(name="correspondence.send_welcome_email", state="disabled", by="test")
    process = a_process()

    # when crm publishes ClientCreated for the process
    with (
        django_capture_on_commit_callbacks(execute=True),
        correlation.bound(process.id),
        transaction.atomic(),
    ):
        record = bus.publish(client_created(process.client_id), source="crm")
        assert broker.sent == []

    # then the event is recorded with one delivery per listener that is not disabled
    deliveries = {d.listener: d for d in Delivery.objects.filter(event=record)}
    assert sorted(deliveries) == [
        "correspondence.remember_recipient",
        "marketing.join_audience",
        "sales.replicate_client",
    ]
    held = deliveries["marketing.join_audience"]
    assert (held.status, held.sends, held.sent_at, held.next_attempt_at) == ("held", 0, None, None)
    for name in ("correspondence.remember_recipient", "sales.replicate_client"):
        delivery = deliveries[name]
        assert (delivery.status, delivery.sends, delivery.attempts) == ("sent", 1, 0)
        assert delivery.process_id == process.id
        assert delivery.next_attempt_at is not None and delivery.sent_at is not None
        assert delivery.next_attempt_at - delivery.sent_at == timedelta(seconds=30)
    record.refresh_from_db()
    assert (record.name, record.source, record.process_id, record.payload["email"]) == (
        "ClientCreated",
        "crm",
        process.id,
        "ada@example.com",
    )
    # and the trace names who gets it and who holds it; only the sent ones go on the broker
    assert trace_of(process.id) == [published("crm", "ClientCreated")]
    assert details_of(process.id) == [
        {
            "event_id": str(record.id),
            "listeners": ["correspondence.remember_recipient", "sales.replicate_client"],
            "held": ["marketing.join_audience"],
        }
    ]
    assert broker.sent == [
        a_delivery(deliveries["correspondence.remember_recipient"]),
        a_delivery(deliveries["sales.replicate_client"]),
    ]


def test_an_event_nobody_listens_to_now_completes_its_process() -> None:
    # given crm's only ClientRegistered listener is disabled
    actions.listener_set(name="crm.create_client", state="disabled", by="test")

    # when a registration starts
    process = register()

    # then nothing is left to deliver: the process is complete at once
    process.refresh_from_db()
    assert process.status == "completed"
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        finished("completed"),
    ]
    assert details_of(process.id)[1]["listeners"] == []


def test_an_event_about_an_erased_client_is_recorded_without_payload_nor_delivery() -> None:
    # given an erased client
    process = register()
    gateway.client_erase(client_id=process.client_id, initiator=gateway.SYSTEM)
    other = a_process()

    # when an event about them is published
    with correlation.bound(other.id):
        record = bus.publish(client_created(process.client_id), source="crm")

    # then it carries nothing personal and reaches nobody
    assert record.payload == {}
    assert Delivery.objects.filter(event=record).count() == 0
    assert details_of(other.id)[0] == {
        "event_id": str(record.id),
        "listeners": [],
        "dropped": "client erased",
    }


# --- delivering -----------------------------------------------------------------------------------


def test_deliver_runs_the_listener_once_and_publishes_its_events_in_the_same_transaction(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a registration's ClientRegistered waiting for crm
    process = register()
    delivery = the_delivery(process)

    # when crm's worker runs the delivery
    with django_capture_on_commit_callbacks(execute=True):
        outcome = bus.deliver(delivery_id=delivery.id)

    # then crm created the client, the delivery is done and processed, the trace says so
    delivery.refresh_from_db()
    assert outcome == "done"
    assert (delivery.status, delivery.next_attempt_at, delivery.attempts) == ("done", None, 0)
    assert delivery.done_at is not None
    assert Client.objects.get().id == process.client_id
    assert list(ProcessedMessage.objects.values_list("message_id", "consumer")) == [
        (delivery.id, "crm.create_client")
    ]
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        published("crm", "ClientCreated"),
        delivered("crm", "ClientRegistered"),
    ]
    assert details_of(process.id)[3] == {"listener": "crm.create_client"}
    # and crm's ClientCreated went out to its four listeners when the delivery committed
    follow_ups = list(Delivery.objects.filter(event__name="ClientCreated").order_by("listener"))
    assert [d.listener for d in follow_ups] == CLIENT_CREATED_LISTENERS
    assert broker.sent == [a_delivery(d) for d in follow_ups]
    process.refresh_from_db()
    assert process.status == "running"

    # when a copy of the delivery arrives
    again = bus.deliver(delivery_id=delivery.id)

    # then nothing happens twice
    assert again == "ignored: delivery is done"
    assert (Client.objects.count(), EventRecord.objects.filter(name="ClientCreated").count()) == (
        1,
        1,
    )


def test_a_listener_that_raises_after_publishing_publishes_nothing(
    monkeypatch: pytest.MonkeyPatch, broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given crm's listener fails after creating the client and publishing ClientCreated
    def create_then_fail(sender: Any, event: Any, **kwargs: Any) -> None:
        crm_handlers.create_client(sender, event=event)
        raise RuntimeError("after publishing")

    listener = bus._registry["crm.create_client"]
    monkeypatch.setitem(
        bus._registry,
        "crm.create_client",
        bus.Listener(listener.name, listener.component, listener.event, create_then_fail),
    )
    process = register()

    # when the delivery runs
    with django_capture_on_commit_callbacks(execute=True):
        outcome = bus.deliver(delivery_id=the_delivery(process).id)

    # then its effect and its event went together: neither is left, nothing was published
    assert outcome == "error: RuntimeError"
    assert Client.objects.count() == 0
    assert list(EventRecord.objects.values_list("name", flat=True)) == ["ClientRegistered"]
    assert Delivery.objects.count() == 1
    assert ProcessedMessage.objects.count() == 0
    assert broker.sent == []
    assert trace_of(process.id)[-1] == ("crm", "ClientRegistered", "retry", "error", 1)


def test_a_copy_whose_processed_record_exists_does_nothing() -> None:
    process = register()
    delivery = the_delivery(process)
    ProcessedMessage.objects.create(message_id=delivery.id, consumer="crm.create_client")

    assert bus.deliver(delivery_id=delivery.id) == "ignored: already processed"

    assert Client.objects.count() == 0
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_an_unknown_delivery_is_reported() -> None:
    assert bus.deliver(delivery_id=uuid.uuid4()) == "unknown delivery"


def test_a_registration_completes_when_nothing_is_left_to_deliver() -> None:
    # given a registration
    process = register()

    # when every delivery runs, in the order they were made
    outcomes = deliver_all()

    # then each listener ran once, and the last settled delivery completed the process
    assert outcomes == [
        ("crm.create_client", "done"),
        ("correspondence.remember_recipient", "done"),
        ("correspondence.send_welcome_email", "done"),
        ("marketing.join_audience", "done"),
        ("sales.replicate_client", "done"),
        ("crm.record_welcome_email", "done"),
        ("sales.replicate_communication", "done"),
    ]
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        published("crm", "ClientCreated"),
        delivered("crm", "ClientRegistered"),
        delivered("correspondence", "ClientCreated"),
        ("correspondence", "send_email", "step", "sent", 1),
        published("correspondence", "WelcomeEmailSent"),
        delivered("correspondence", "ClientCreated"),
        delivered("marketing", "ClientCreated"),
        delivered("sales", "ClientCreated"),
        published("crm", "CommunicationRecorded"),
        delivered("crm", "WelcomeEmailSent"),
        delivered("sales", "CommunicationRecorded"),
        finished("completed"),
    ]
    process.refresh_from_db()
    assert process.status == "completed" and process.finished_at is not None
    assert (
        CustomerReplica.objects.get().client_id,
        Message.objects.get().template_key,
        CommunicationReplica.objects.get().id,
    ) == (process.client_id, "welcome", Communication.objects.get().id)


def test_a_delivery_that_raises_waits_then_is_dead_and_fails_its_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given crm raises every time
    crm_down(monkeypatch)
    process = register()
    delivery = the_delivery(process)

    # when the delivery runs once
    before = timezone.now()
    first = bus.deliver(delivery_id=delivery.id)

    # then it waits for a retry after its backoff
    delivery.refresh_from_db()
    assert first == "error: RuntimeError"
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "waiting",
        1,
        "RuntimeError: crm is down",
    )
    assert delivery.next_attempt_at is not None
    assert before + timedelta(seconds=1) <= delivery.next_attempt_at
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=1)

    # when it runs twice more
    outcomes = [bus.deliver(delivery_id=delivery.id) for _ in range(2)]

    # then the third error makes it dead, and its process failed
    delivery.refresh_from_db()
    assert outcomes == ["error: RuntimeError"] * 2
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("dead", 3, None)
    assert "RuntimeError: crm is down" in delivery.traceback
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        ("crm", "ClientRegistered", "retry", "error", 1),
        ("crm", "ClientRegistered", "retry", "error", 2),
        ("crm", "ClientRegistered", "failure", "dead", 3),
        finished("failed"),
    ]
    assert details_of(process.id)[2:] == [
        {"listener": "crm.create_client", "error": "RuntimeError", "retry_in": 1.0},
        {"listener": "crm.create_client", "error": "RuntimeError", "retry_in": 2.0},
        {"listener": "crm.create_client", "error": "RuntimeError"},
        {"dead": "crm.create_client"},
    ]
    process.refresh_from_db()
    assert process.status == "failed" and process.finished_at is not None
    assert bus.deliver(delivery_id=delivery.id) == "ignored: delivery is dead"


def test_a_delivery_for_an_erased_client_is_skipped() -> None:
    # given a registration whose client is erased before crm hears of it
    process = register()
    gateway.client_erase(client_id=process.client_id, initiator=gateway.SYSTEM)
    delivery = the_delivery(process)

    # when the delivery runs
    outcome = bus.deliver(delivery_id=delivery.id)

    # then the listener is not run, and the process completes with nothing left to do
    delivery.refresh_from_db()
    assert outcome == "skipped"
    assert (delivery.status, delivery.next_attempt_at) == ("skipped", None)
    assert Client.objects.count() == 0
    assert ProcessedMessage.objects.count() == 0
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        delivered("crm", "ClientRegistered", "skipped"),
        finished("completed"),
    ]


def test_a_delivery_the_broker_refused_waits_for_the_sweeper(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given the broker refuses when a registration commits
    broker.refusing = OperationalError("connection refused")
    with django_capture_on_commit_callbacks(execute=True):
        process = register()
    delivery = the_delivery(process)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - timezone.now() <= timedelta(seconds=1)

    # when the broker is back and the sweeper finds it due
    broker.refusing = None
    bus.relay._broker_down_until = 0.0
    overdue(Delivery.objects.filter(pk=delivery.id))
    with django_capture_on_commit_callbacks(execute=True):
        assert bus.deliveries_sweep() == 1

    # then it is on the broker once
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sends, delivery.attempts) == ("sent", 2, 0)
    assert broker.sent == [a_delivery(delivery)]


# --- the sweeper ----------------------------------------------------------------------------------


def test_the_sweeper_sends_what_is_due_and_claims_each_delivery_once(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given deliveries unacknowledged, waiting to retry, never published, held and not yet due
    process = a_process()
    with correlation.bound(process.id):
        record = bus.publish(client_created(process.client_id), source="crm")
    by_listener = {d.listener: d for d in Delivery.objects.filter(event=record)}
    unacknowledged = by_listener["correspondence.remember_recipient"]
    waiting = by_listener["correspondence.send_welcome_email"]
    unpublished = by_listener["marketing.join_audience"]
    not_due = by_listener["sales.replicate_client"]
    now = timezone.now()
    Delivery.objects.filter(pk=unacknowledged.id).update(next_attempt_at=now - timedelta(seconds=3))
    Delivery.objects.filter(pk=waiting.id).update(
        status="waiting", attempts=1, next_attempt_at=now - timedelta(seconds=2)
    )
    Delivery.objects.filter(pk=unpublished.id).update(
        status="pending", next_attempt_at=now - timedelta(seconds=1)
    )
    held = Delivery.objects.create(
        event=record, listener="sales.replicate_client", component="sales", status="held"
    )

    # when the sweeper runs twice
    with django_capture_on_commit_callbacks(execute=True):
        first = bus.deliveries_sweep()
    with django_capture_on_commit_callbacks(execute=True):
        second = bus.deliveries_sweep()

    # then the three due ones were sent once each, oldest due first
    assert (first, second) == (3, 0)
    assert broker.sent == [a_delivery(d) for d in (unacknowledged, waiting, unpublished)]
    rows = {d.id: d for d in Delivery.objects.all()}
    for delivery in (unacknowledged, waiting, unpublished):
        row = rows[delivery.id]
        assert (row.status, row.sends) == ("sent", 2)
        assert row.next_attempt_at is not None and row.sent_at is not None
        assert row.next_attempt_at - row.sent_at == timedelta(seconds=60)
    assert rows[waiting.id].attempts == 1
    assert (rows[not_due.id].status, rows[not_due.id].sends) == ("sent", 1)
    assert (rows[held.id].status, rows[held.id].sends) == ("held", 0)


# --- people's actions -----------------------------------------------------------------------------


def dead_registration() -> tuple[Process, Delivery]:
    process = register()
    delivery = the_delivery(process)
    with pytest.MonkeyPatch.context() as patch:
        crm_down(patch)
        for _ in range(3):
            bus.deliver(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert delivery.status == "dead"
    return process, delivery


def test_retrying_a_dead_delivery_runs_its_failed_process_again(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a dead delivery that failed its process
    process, delivery = dead_registration()

    # when a person retries it
    with django_capture_on_commit_callbacks(execute=True):
        retried = actions.delivery_retry(delivery_id=delivery.id, by="user:ops")

    # then it is sent with fresh attempts, and the process runs again
    process.refresh_from_db()
    assert (process.status, process.finished_at) == ("running", None)
    assert trace_of(process.id)[-2:] == [finished("failed"), finished("running")]
    assert details_of(process.id)[-1] == {"retry": "crm.create_client", "by": "user:ops"}
    retried.refresh_from_db()
    assert (retried.status, retried.attempts, retried.sends, retried.last_error) == (
        "sent",
        0,
        2,
        "",
    )
    assert retried.traceback == ""
    assert broker.sent == [a_delivery(retried)]
    audit = AuditEntry.objects.get(action="delivery.retry")
    assert (audit.actor, audit.target, audit.detail) == (
        "user:ops",
        str(delivery.id),
        {"listener": "crm.create_client"},
    )
    # and the process completes
    deliver_all()
    process.refresh_from_db()
    assert process.status == "completed"


def test_only_a_dead_delivery_can_be_retried() -> None:
    process = register()

    with pytest.raises(ApplicationError) as raised:
        actions.delivery_retry(delivery_id=the_delivery(process).id, by="ops")
    assert raised.value.detail == "only a dead delivery can be retried (this one is sent)"
    with pytest.raises(NotFound):
        actions.delivery_retry(delivery_id=uuid.uuid4(), by="ops")
    assert AuditEntry.objects.filter(action="delivery.retry").count() == 0


def test_a_process_with_two_dead_deliveries_is_failed_again_when_one_retry_settles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given sales and marketing both raise until their ClientCreated deliveries are dead
    process = register(marketing_consent=True)
    with pytest.MonkeyPatch.context() as patch:
        for service in (sales_services.customer_replica_apply, marketing_services.audience_apply):
            patch.setattr(
                sys.modules[service.__module__], service.__name__, raising(RuntimeError("down"))
            )
        deliver_all()
    dead = Delivery.objects.filter(process=process, status="dead")
    assert sorted(dead.values_list("listener", flat=True)) == [
        "marketing.join_audience",
        "sales.replicate_client",
    ]
    process.refresh_from_db()
    assert process.status == "failed"

    # when a person retries one of the two, and it settles
    retried = dead.get(listener="sales.replicate_client")
    actions.delivery_retry(delivery_id=retried.id, by="ops")
    assert deliver_all() == [("sales.replicate_client", "done")]

    # then the process is failed again (the other is still dead), not running with nothing to do
    process.refresh_from_db()
    assert (process.status, process.finished_at is not None) == ("failed", True)
    assert trace_of(process.id)[-3:] == [
        finished("running"),
        delivered("sales", "ClientCreated"),
        finished("failed"),
    ]
    assert details_of(process.id)[-1] == {"dead": "marketing.join_audience"}


def raising(error: Exception) -> Callable[..., Any]:
    def fail(**kwargs: Any) -> Any:
        raise error

    return fail


def test_replay_sends_an_event_again_to_one_of_its_listeners(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a completed registration
    process = register()
    deliver_all()
    record = EventRecord.objects.get(name="ClientCreated")
    original = Delivery.objects.get(event=record, listener="sales.replicate_client")

    # when a person replays ClientCreated to sales
    with django_capture_on_commit_callbacks(execute=True):
        replay = actions.event_replay(
            event_id=record.id, listener="sales.replicate_client", by="ops"
        )

    # then a new delivery runs it again, outside the finished process
    assert replay.id != original.id
    assert (replay.replay, replay.status, replay.sends, replay.attempts) == (True, "sent", 1, 0)
    assert (replay.listener, replay.component, replay.process_id) == (
        "sales.replicate_client",
        "sales",
        None,
    )
    assert broker.sent == [a_delivery(replay)]
    audit = AuditEntry.objects.get(action="event.replay")
    assert (audit.actor, audit.target, audit.detail) == (
        "ops",
        str(record.id),
        {"listener": "sales.replicate_client"},
    )
    assert bus.deliver(delivery_id=replay.id) == "done"
    process.refresh_from_db()
    assert process.status == "completed"
    assert trace_of(process.id)[-1] == finished("completed")


def test_replaying_the_event_of_a_dead_delivery_resumes_its_failed_process() -> None:
    # given a registration failed by its dead ClientRegistered delivery
    process, delivery = dead_registration()

    # when a person replays ClientRegistered to crm, and everything is delivered
    replay = actions.event_replay(
        event_id=delivery.event_id, listener="crm.create_client", by="ops"
    )
    deliver_all()

    # then the replay belongs to the process, which runs again and completes
    assert replay.process_id == process.id
    process.refresh_from_db()
    assert process.status == "completed"


def test_a_replay_within_a_running_process_is_traced() -> None:
    process = register()
    record = EventRecord.objects.get(name="ClientRegistered")

    replay = actions.event_replay(event_id=record.id, listener="crm.create_client", by="ops")

    assert replay.process_id == process.id
    assert trace_of(process.id)[-1] == ("integration", "ClientRegistered", "action", "replayed", 1)
    assert details_of(process.id)[-1] == {"listener": "crm.create_client", "by": "ops"}


@pytest.mark.parametrize("listener", ["sales.replicate_client", "nobody.listens"])
def test_replay_only_to_a_listener_of_that_event(listener: str) -> None:
    process = register()
    record = EventRecord.objects.get(name="ClientRegistered")

    with pytest.raises(ApplicationError) as raised:
        actions.event_replay(event_id=record.id, listener=listener, by="ops")

    assert raised.value.detail == f"{listener} does not listen to ClientRegistered"
    assert Delivery.objects.filter(replay=True).count() == 0
    assert len(trace_of(process.id)) == 2


def test_replay_of_an_unknown_event_is_not_found() -> None:
    with pytest.raises(NotFound):
        actions.event_replay(event_id=uuid.uuid4(), listener="crm.create_client", by="ops")


def test_a_paused_listener_gets_its_backlog_in_publish_order_on_resume(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given sales paused while five clients are created
    actions.listener_set(name="sales.replicate_client", state="paused", by="test")
    records = [bus.publish(client_created(), source="crm") for _ in range(5)]
    for index, record in enumerate(records):  # published one second apart, in this order
        EventRecord.objects.filter(pk=record.id).update(
            published_at=timezone.now() - timedelta(seconds=10 - index)
        )
    held = Delivery.objects.filter(listener="sales.replicate_client")
    assert set(held.values_list("status", flat=True)) == {"held"}

    # when sales resumes
    with django_capture_on_commit_callbacks(execute=True):
        actions.listener_set(name="sales.replicate_client", state="enabled", by="test")

    # then its backlog is sent in the order it was published
    order = {d.event_id: d for d in held}
    assert [s.args for s in broker.sent if s.queue == "sales"] == [
        [str(order[record.id].id)] for record in records
    ]
    assert set(held.values_list("status", "sends")) == {("sent", 1)}


def test_disabling_a_paused_listener_skips_its_backlog_and_settles_the_processes() -> None:
    # given crm's listener paused when a registration started
    actions.listener_set(name="crm.create_client", state="paused", by="test")
    process = register()
    assert details_of(process.id)[1] == {
        "event_id": str(EventRecord.objects.get().id),
        "listeners": [],
        "held": ["crm.create_client"],
    }

    # when it is disabled
    actions.listener_set(name="crm.create_client", state="disabled", by="test")

    # then what it held is skipped, and the process has nothing left to wait for
    delivery = the_delivery(process)
    assert delivery.status == "skipped" and delivery.done_at is not None
    process.refresh_from_db()
    assert process.status == "completed"
    assert trace_of(process.id) == [
        started(),
        published("integration", "ClientRegistered"),
        ("crm", "ClientRegistered", "delivery", "skipped", 1),
        finished("completed"),
    ]


@pytest.mark.parametrize(
    ("sends", "base"), [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600)]
)
def test_redelivery_waits_t_times_two_to_the_sends_at_most_600(sends: int, base: float) -> None:
    assert bus.redeliver_after(sends) == base


# --- sending email: after commit, its outcome in a transaction of its own ------------------------

WELCOME = "correspondence.send_welcome_email"
REGISTRATION_TRACE = [
    started(),
    published("integration", "ClientRegistered"),
    published("crm", "ClientCreated"),
    delivered("crm", "ClientRegistered"),
    delivered("correspondence", "ClientCreated"),
    ("correspondence", "send_email", "step", "sent", 1),
    published("correspondence", "WelcomeEmailSent"),
    delivered("correspondence", "ClientCreated"),
    delivered("marketing", "ClientCreated"),
    delivered("sales", "ClientCreated"),
    published("crm", "CommunicationRecorded"),
    delivered("crm", "WelcomeEmailSent"),
    delivered("sales", "CommunicationRecorded"),
    finished("completed"),
]


def deliver_until(listener: str) -> Delivery:
    """Run the deliveries in order up to the listener's, and return it (not yet run)."""
    for _ in range(20):
        delivery = Delivery.objects.filter(status__in=bus.RUNNABLE).order_by(
            "created_at", "listener"
        )[0]
        if delivery.listener == listener:
            return delivery
        assert bus.deliver(delivery_id=delivery.id) == "done"
    raise AssertionError(f"no delivery to {listener}")


@pytest.mark.django_db(transaction=True)
def test_the_welcome_email_is_sent_after_the_deliverys_transaction_commits(
    settings: Any, mailoutbox: list[Any]
) -> None:
    # given a registration, and a mail server that notes whether a transaction is open
    settings.EMAIL_BACKEND = "tests.correspondence.mail.TransactionWatchingBackend"
    TransactionWatchingBackend.in_transaction.clear()
    process = register()

    # when every delivery runs
    deliver_all()

    # then the email went out once, with no transaction open, and WelcomeEmailSent was
    # published in the transaction that recorded it sent
    assert TransactionWatchingBackend.in_transaction == [False]
    assert trace_of(process.id) == REGISTRATION_TRACE
    message = Message.objects.get()
    assert (message.status, message.attempts) == ("sent", 1)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [message.message_id_header]
    assert EventRecord.objects.get(name="WelcomeEmailSent").payload["message_id"] == str(message.id)


def test_a_failed_send_keeps_the_delivery_open_and_its_retry_sends_the_same_message(
    settings: Any, mailoutbox: list[Any]
) -> None:
    # given a registration at correspondence's welcome, and a mail server that refuses
    process = register()
    delivery = deliver_until(WELCOME)
    settings.EMAIL_BACKEND = "tests.correspondence.mail.RefusingBackend"

    # when the delivery runs
    outcome = bus.deliver(delivery_id=delivery.id)

    # then it waits for a retry, the send's error is traced, nothing is announced
    assert outcome == "error: ConnectionRefusedError"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("waiting", 1)
    assert trace_of(process.id)[-1] == ("correspondence", "send_email", "retry", "error", 1)
    assert details_of(process.id)[-1] == {
        "listener": WELCOME,
        "error": "ConnectionRefusedError",
        "retry_in": 1.0,
    }
    queued = Message.objects.get()
    assert queued.status == "failed"
    assert ProcessedMessage.objects.filter(message_id=delivery.id).count() == 0
    assert not EventRecord.objects.filter(name="WelcomeEmailSent").exists()

    # and when the server is back and the delivery runs again
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert bus.deliver(delivery_id=delivery.id) == "done"

    # then the same message goes out once, with its Message-ID, and the process completes
    deliver_all()
    message = Message.objects.get()
    assert (message.id, message.status, message.attempts) == (queued.id, "sent", 2)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [queued.message_id_header]
    assert trace_of(process.id) == [
        *REGISTRATION_TRACE[:5],
        ("correspondence", "send_email", "retry", "error", 1),
        ("correspondence", "send_email", "step", "sent", 2),
        published("correspondence", "WelcomeEmailSent"),
        delivered("correspondence", "ClientCreated", attempt=2),
        *REGISTRATION_TRACE[8:],
    ]


def test_an_erasure_accepted_between_the_intent_and_the_send_cancels_it(
    monkeypatch: pytest.MonkeyPatch, mailoutbox: list[Any]
) -> None:
    # given the client's erasure is accepted just after correspondence queued the welcome
    process = register()
    delivery = deliver_until(WELCOME)
    queue = correspondence_services.message_queue_claimed

    def queue_then_erasure_accepted(**kwargs: Any) -> correspondence_services.Queued:
        queued = queue(**kwargs)
        ErasedClientId.objects.create(client_id=queued.message.client_id)
        return queued

    monkeypatch.setattr(
        correspondence_services, "message_queue_claimed", queue_then_erasure_accepted
    )

    # when the delivery runs
    assert bus.deliver(delivery_id=delivery.id) == "done"

    # then nothing is sent or announced, and the message holds no personal data
    assert mailoutbox == []
    message = Message.objects.get()
    assert (message.status, message.recipient, message.subject, message.body) == (
        "cancelled",
        ERASED_RECIPIENT,
        "",
        "",
    )
    assert trace_of(process.id)[-2:] == [
        ("correspondence", "send_email", "step", "cancelled", 1),
        delivered("correspondence", "ClientCreated"),
    ]
    assert not EventRecord.objects.filter(name="WelcomeEmailSent").exists()
