"""The event bus of choreography: publish/subscribe through the outbox.

Each event type is a Django Signal; a listener is a receiver that its app connects in
`AppConfig.ready()` through `subscribe`, under the name `<component>.<name>` (its dispatch_uid).
The bus keeps its own registry of listeners and turns every receiver into a durable delivery: a
`Delivery` row per listener enabled at publish time, written in the publisher's transaction, put
on the listener's component queue after commit. The listener runs in its component's worker, in
one transaction with its processed record, the delivery marked done, its trace entry and whatever
it publishes in turn. A delivery that raises is retried with backoff and is dead when its attempts
are spent; one that is never acknowledged is resent by the sweeper. This module imports no
business app.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from common import correlation
from common.errors import ApplicationError, NotFound
from integration import lifecycle, relay
from integration.events import EVENT_TYPES, Event
from integration.models import (
    AuditEntry,
    Delivery,
    DeliveryStatus,
    ErasedClientId,
    EventRecord,
    IntegrationMode,
    ListenerState,
    ListenerSwitch,
    Process,
    ProcessedMessage,
    ProcessStatus,
    TraceKind,
)
from integration.tracing import lock_process, trace_record

logger = logging.getLogger(__name__)

DELIVER_TASK = "integration.deliver"
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.WAITING, DeliveryStatus.HELD)
RUNNABLE = (DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.WAITING)
# Events that must reach their listeners even once the client is erased.
ERASURE_EVENTS = {"ClientErasureRequested", "ClientErased"}

Receiver = Callable[..., None]


@dataclass(frozen=True)
class Listener:
    name: str
    component: str
    event: str
    receiver: Receiver


SIGNALS: dict[str, Signal] = {name: Signal() for name in EVENT_TYPES}
_registry: dict[str, Listener] = {}


def subscribe(event_type: type[Event], receiver: Receiver, *, listener: str) -> None:
    """Connect a receiver to an event type as listener `<component>.<name>`."""
    component, _, short = listener.partition(".")
    if component not in settings.COMPONENTS or not short:
        raise ValueError(f"a listener is named <component>.<name>, not {listener!r}")
    SIGNALS[event_type.name].connect(receiver, dispatch_uid=listener, weak=False)
    _registry[listener] = Listener(listener, component, event_type.name, receiver)


def registry() -> list[Listener]:
    return sorted(_registry.values(), key=lambda entry: (entry.event, entry.name))


def listeners_of(event_name: str) -> list[Listener]:
    return [entry for entry in registry() if entry.event == event_name]


def listener_names(name: str) -> list[str]:
    """A listener's own name, or every listener of a component."""
    if name in _registry:
        return [name]
    return sorted(entry.name for entry in _registry.values() if entry.component == name)


def redeliver_after(sends: int) -> float:
    """A delivery put on the broker `sends` times and still unacknowledged is resent after
    T·2^(sends-1) s (T = ORCHESTRATOR_STEP_TIMEOUT, ±20 %, at most 600 s)."""
    base = settings.ORCHESTRATOR_STEP_TIMEOUT * 2 ** (max(sends, 1) - 1)
    return float(min(600.0, base * random.uniform(0.8, 1.2)))


def error_backoff(attempt: int) -> float:
    base = min(1.0, settings.ORCHESTRATOR_STEP_TIMEOUT) * 2 ** (attempt - 1)
    return float(min(600.0, base * random.uniform(0.8, 1.2)))


# --- publishing -------------------------------------------------------------------------------


def publish(event: Event, *, source: str) -> EventRecord:
    """Record an event and one delivery per listener enabled now (inside the caller's
    transaction); the deliveries go on the broker after commit."""
    process_id = correlation.get()
    erased = _is_erased(event.client_id) and event.name not in ERASURE_EVENTS
    record = EventRecord.objects.create(
        name=event.name,
        schema_version=event.schema_version,
        source=source,
        process_id=process_id,
        client_id=event.client_id,
        payload={} if erased else event.payload(),
    )
    deliveries = [] if erased else _deliveries_for(record)
    Delivery.objects.bulk_create(deliveries)
    if process_id:
        _trace_published(record, deliveries, dropped=erased)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.SENT:
            relay.send_after_commit(_outgoing(delivery))
    if process_id and not deliveries:
        settle(UUID(str(process_id)))
    return record


def _deliveries_for(record: EventRecord) -> list[Delivery]:
    listeners = listeners_of(record.name)
    states = dict(
        ListenerSwitch.objects.filter(listener__in=[x.name for x in listeners]).values_list(
            "listener", "state"
        )
    )
    now = timezone.now()
    deliveries = []
    for listener in listeners:
        state = states.get(listener.name, ListenerState.ENABLED)
        if state == ListenerState.DISABLED:
            continue
        held = state == ListenerState.PAUSED
        deliveries.append(
            Delivery(
                event=record,
                process_id=record.process_id,
                listener=listener.name,
                component=listener.component,
                status=DeliveryStatus.HELD if held else DeliveryStatus.SENT,
                sends=0 if held else 1,
                sent_at=None if held else now,
                next_attempt_at=None if held else now + timedelta(seconds=redeliver_after(1)),
            )
        )
    return deliveries


def _trace_published(record: EventRecord, deliveries: list[Delivery], *, dropped: bool) -> None:
    detail: dict[str, Any] = {
        "event_id": str(record.id),
        "listeners": [d.listener for d in deliveries if d.status != DeliveryStatus.HELD],
    }
    held = [d.listener for d in deliveries if d.status == DeliveryStatus.HELD]
    if held:
        detail["held"] = held
    if dropped:
        detail["dropped"] = "client erased"
    trace_record(
        process_id=record.process_id,  # type: ignore[arg-type]
        component=record.source,
        name=record.name,
        kind=TraceKind.EVENT,
        status="published",
        detail=detail,
    )


def _outgoing(delivery: Delivery) -> relay.Outgoing:
    return relay.Outgoing(
        task=DELIVER_TASK,
        args=[str(delivery.id)],
        queue=delivery.component,
        correlation_id=str(delivery.process_id) if delivery.process_id else None,
        on_failure=lambda: _mark_unpublished(delivery.id),
    )


def _mark_unpublished(delivery_id: UUID) -> None:
    Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENT).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=1)
    )


def _is_erased(client_id: UUID | str | None) -> bool:
    if not client_id:
        return False
    return ErasedClientId.objects.filter(client_id=client_id).exists()


# --- delivering (in the listener's worker) ----------------------------------------------------


def deliver(*, delivery_id: UUID) -> str:
    """Run one copy of a delivery. Returns what happened, for the worker's log."""
    row = Delivery.objects.filter(pk=delivery_id).values("process_id").first()
    if row is None:
        return "unknown delivery"
    with correlation.bound(row["process_id"]):
        try:
            with transaction.atomic():
                return _deliver_once(delivery_id)
        except Exception as error:  # noqa: BLE001 - recorded on the delivery, retried or dead
            logger.warning("delivery %s raised %s", delivery_id, type(error).__name__)
            _record_error(delivery_id, error)
            return f"error: {type(error).__name__}"


def _deliver_once(delivery_id: UUID) -> str:
    delivery = Delivery.objects.select_related("event").get(pk=delivery_id)
    if delivery.status not in RUNNABLE:
        return f"ignored: delivery is {delivery.status}"
    listener = _registry.get(delivery.listener)
    event_name = delivery.event.name
    if listener is None or (
        _is_erased(delivery.event.client_id) and event_name not in ERASURE_EVENTS
    ):
        _settle_delivery(delivery, DeliveryStatus.SKIPPED, "skipped")
        return "skipped"
    try:
        with transaction.atomic():
            ProcessedMessage.objects.create(message_id=delivery.id, consumer=delivery.listener)
    except IntegrityError:
        return "ignored: already processed"
    _wake_if_stuck(delivery.process_id)
    event = EVENT_TYPES[event_name].from_payload(delivery.event.payload)
    listener.receiver(sender=type(event), event=event)
    _settle_delivery(delivery, DeliveryStatus.DONE, "done")
    return "done"


def _settle_delivery(delivery: Delivery, status: str, trace_status: str) -> None:
    delivery.status = status
    delivery.done_at = timezone.now()
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "done_at", "next_attempt_at"])
    if delivery.process_id:
        trace_record(
            process_id=delivery.process_id,
            component=delivery.component,
            name=delivery.event.name,
            kind=TraceKind.DELIVERY,
            status=trace_status,
            attempt=delivery.attempts + 1,
            detail={"listener": delivery.listener},
        )
        settle(delivery.process_id)


def _wake_if_stuck(process_id: UUID | None) -> None:
    """Work reached a stuck process: it runs again (locked only when it is stuck)."""
    if process_id and Process.objects.filter(pk=process_id, status=ProcessStatus.STUCK).exists():
        lifecycle.process_wake(process=lock_process(process_id))


def settle(process_id: UUID) -> None:
    """A delivery settled: under the process row's lock, complete the process when nothing is
    left to deliver for its correlation id (fail it when something is left dead)."""
    process = lock_process(process_id)
    if process.mode != IntegrationMode.CHOREOGRAPHY:
        return
    if process.status not in (ProcessStatus.RUNNING, ProcessStatus.STUCK):
        return
    if Delivery.objects.filter(process_id=process_id, status__in=OPEN).exists():
        lifecycle.process_wake(process=process)
        return
    dead = (
        Delivery.objects.filter(process_id=process_id, status=DeliveryStatus.DEAD)
        .values_list("listener", flat=True)
        .first()
    )
    if dead is not None:
        # Another delivery is still dead (a person retried only one): failed again, not left
        # running with nothing to do.
        lifecycle.process_finish(
            process=process, status=ProcessStatus.FAILED, detail={"dead": dead}
        )
        return
    lifecycle.process_finish(process=process, status=ProcessStatus.COMPLETED)


def _record_error(delivery_id: UUID, error: BaseException) -> None:
    with transaction.atomic():
        delivery = Delivery.objects.select_related("event").select_for_update().get(pk=delivery_id)
        if delivery.status not in RUNNABLE:
            return
        delivery.attempts += 1
        delivery.last_error = f"{type(error).__name__}: {error}"[:2000]
        delivery.traceback = "".join(traceback.format_exception(error))[-20_000:]
        dead = delivery.attempts >= settings.ORCHESTRATOR_MAX_ATTEMPTS
        delay = 0.0
        if dead:
            delivery.status = DeliveryStatus.DEAD
            delivery.next_attempt_at = None
        else:
            delay = error_backoff(delivery.attempts)
            delivery.status = DeliveryStatus.WAITING
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save()
        if delivery.process_id is None:
            return
        detail: dict[str, Any] = {"listener": delivery.listener, "error": type(error).__name__}
        if not dead:
            detail["retry_in"] = round(delay, 3)
        trace_record(
            process_id=delivery.process_id,
            component=delivery.component,
            name=delivery.event.name,
            kind=TraceKind.FAILURE if dead else TraceKind.RETRY,
            status="dead" if dead else "error",
            attempt=delivery.attempts,
            detail=detail,
            error=error,
        )
        if dead:
            process = lock_process(delivery.process_id)
            if process.status in (ProcessStatus.RUNNING, ProcessStatus.STUCK):
                lifecycle.process_finish(
                    process=process, status=ProcessStatus.FAILED, detail={"dead": delivery.listener}
                )


# --- the sweeper (scheduler) ------------------------------------------------------------------


def deliveries_sweep(*, limit: int = 500) -> int:
    """Send what is due: never published, retries after an error, unacknowledged ones. Rows
    another sweeper holds are skipped (SKIP LOCKED on PostgreSQL; SQLite takes one writer)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status__in=RUNNABLE, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        for delivery in due:
            delivery.status = DeliveryStatus.SENT
            delivery.sends += 1
            delivery.sent_at = now
            delivery.next_attempt_at = now + timedelta(seconds=redeliver_after(delivery.sends))
            relay.send_after_commit(_outgoing(delivery))
        Delivery.objects.bulk_update(due, ["status", "sends", "sent_at", "next_attempt_at"])
    return len(due)


# --- people's actions -------------------------------------------------------------------------


def _audit(by: str, action: str, target: str, **detail: Any) -> None:
    AuditEntry.objects.create(actor=by, action=action, target=target, detail=detail)


def delivery_retry(*, delivery_id: UUID, by: str) -> Delivery:
    """Send a dead delivery again, with fresh attempts; its failed process runs again."""
    with transaction.atomic():
        delivery = Delivery.objects.select_related("event").filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No such delivery.")
        if delivery.status != DeliveryStatus.DEAD:
            raise ApplicationError(
                f"only a dead delivery can be retried (this one is {delivery.status})"
            )
        if delivery.process_id:
            process = lock_process(delivery.process_id)
            if process.status == ProcessStatus.FAILED:
                lifecycle.process_resume(
                    process=process, by=by, detail={"retry": delivery.listener}
                )
        _resend(delivery)
        _audit(by, "delivery.retry", str(delivery.id), listener=delivery.listener)
        return delivery


def event_replay(*, event_id: UUID, listener: str, by: str) -> Delivery:
    """Deliver an event once more to one listener (a new delivery: it runs again)."""
    with transaction.atomic():
        record = EventRecord.objects.filter(pk=event_id).first()
        if record is None:
            raise NotFound("No such event.")
        entry = _registry.get(listener)
        if entry is None or entry.event != record.name:
            raise ApplicationError(f"{listener} does not listen to {record.name}")
        delivery = Delivery(
            event=record,
            process_id=record.process_id,
            listener=listener,
            component=entry.component,
            replay=True,
            status=DeliveryStatus.SENT,
        )
        if record.process_id:
            delivery.process_id = _replay_joins_process(record, listener, by)
        _resend(delivery)
        if delivery.process_id:
            trace_record(
                process_id=delivery.process_id,
                component="integration",
                name=record.name,
                kind=TraceKind.ACTION,
                status="replayed",
                detail={"listener": listener, "by": by},
            )
        _audit(by, "event.replay", str(record.id), listener=listener)
        return delivery


def _replay_joins_process(record: EventRecord, listener: str, by: str) -> UUID | None:
    """A replay belongs to its event's process while the process runs, and when it replaces
    this listener's dead delivery of a failed process (which then runs again). A process that
    ended otherwise is not reopened by a replay."""
    assert record.process_id is not None
    process = lock_process(record.process_id)
    dead = Delivery.objects.filter(event=record, listener=listener, status=DeliveryStatus.DEAD)
    if process.status == ProcessStatus.FAILED and dead.exists():
        dead.update(status=DeliveryStatus.SKIPPED, done_at=timezone.now(), next_attempt_at=None)
        lifecycle.process_resume(process=process, by=by, detail={"replay": listener})
        return process.id
    if process.status in (ProcessStatus.RUNNING, ProcessStatus.STUCK):
        return process.id
    return None


def _resend(delivery: Delivery) -> None:
    now = timezone.now()
    delivery.status = DeliveryStatus.SENT
    delivery.attempts = 0
    delivery.sends += 1
    delivery.sent_at = now
    delivery.next_attempt_at = now + timedelta(seconds=redeliver_after(delivery.sends))
    delivery.last_error = ""
    delivery.traceback = ""
    delivery.save()
    relay.send_after_commit(_outgoing(delivery))


def release_held(*, listener: str) -> int:
    """A paused listener resumes: its held deliveries go out in the order they were published."""
    held = list(
        Delivery.objects.filter(listener=listener, status=DeliveryStatus.HELD)
        .select_related("event")
        .order_by("event__published_at", "created_at")
    )
    for delivery in held:
        _resend(delivery)
    return len(held)


def skip_held(*, listener: str) -> int:
    """A paused listener is disabled: what it held will not be delivered."""
    skipped = list(
        Delivery.objects.filter(listener=listener, status=DeliveryStatus.HELD).select_related(
            "event"
        )
    )
    for delivery in skipped:
        _settle_delivery(delivery, DeliveryStatus.SKIPPED, "skipped")
    return len(skipped)


def forget_client_events(*, client_id: UUID) -> int:
    """Erasure: the payloads of a client's events (personal data) are wiped. The erasure events
    themselves carry nothing but the id, and their listeners still need it."""
    return (
        EventRecord.objects.filter(client_id=client_id)
        .exclude(payload={})
        .exclude(name__in=ERASURE_EVENTS)
        .update(payload={})
    )
