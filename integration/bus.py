"""The event bus of choreography: publish/subscribe through the outbox.

Each event type is a Django Signal. An app subscribes its listeners in `AppConfig.ready()` under
the name `<component>.<name>` (the dispatch_uid); what is connected to the signal is the
listener's recorder. `publish` sends the signal, and each recorder answers with its listener's
durable delivery — one `Delivery` row per listener enabled at that moment (held while paused) —
written in the publisher's transaction and put on the listener's component queue after commit.
The bus keeps its own registry of listener names (for the switches and `manage.py listeners`).

The listener runs in its component's worker, in
one transaction with its processed record, the delivery marked done, its trace entry and whatever
it publishes in turn. A delivery that raises is retried with backoff and is dead when its attempts
are spent; one that is never acknowledged is resent by the sweeper. This module imports no
business app.
"""

from __future__ import annotations

import functools
import logging
import random
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from common import correlation, plain_sql
from common.components import COMPONENTS
from common.errors import ApplicationError, NotFound
from integration.core import backlog, components, lifecycle, relay
from integration.core.erasure import ERASURE_EVENTS
from integration.core.processed import processed_already, processed_claim
from integration.core.runs import Run, run_count, run_uncount
from integration.core.trace import client_version_set, lock_process, trace_batch, trace_record
from integration.events import EVENT_TYPES, ClientState, Event
from integration.models import (
    DELIVERY_OPEN,
    DELIVERY_RUNNABLE,
    Delivery,
    DeliveryStatus,
    ErasedClientId,
    EventRecord,
    IntegrationMode,
    ListenerState,
    ListenerSwitch,
    Process,
    ProcessStatus,
    TraceKind,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "integration.deliver"
OPEN = DELIVERY_OPEN
RUNNABLE = DELIVERY_RUNNABLE

# A receiver returns nothing, or the intent its work after commit needs (see AfterCommit).
Receiver = Callable[..., Any]
Settle = Callable[..., None]


@dataclass(frozen=True)
class AfterCommit:
    """A listener's work outside the database, such as sending an email (nothing outside the
    database happens in a transaction that holds a lock). The receiver records the intent in the
    delivery's transaction and returns it; after commit, in the same worker, the bus calls
    `run(intent, settle)` outside every transaction. `run` calls `settle(status, *events)` inside
    the short transaction that records its outcome: there the bus traces it as `name`, publishes
    the events and marks the delivery done. What `run` raises is retried like a listener's error;
    when it returns without settling (another worker holds the work), the delivery stays open."""

    name: str
    run: Callable[[Any, Settle], None]


@dataclass(frozen=True)
class Listener:
    name: str
    component: str
    event: str
    receiver: Receiver

    def record(
        self,
        sender: Any,
        record: EventRecord,
        switches: dict[str, str],
        paused: frozenset[str],
        **kwargs: Any,
    ) -> Delivery | None:
        """Receiver of the event's signal: this listener's delivery (held while it or its
        component is paused, none while it is disabled), for the publisher to save in its
        transaction."""
        state = switches.get(self.name, ListenerState.ENABLED)
        if state == ListenerState.DISABLED:
            return None
        held = state == ListenerState.PAUSED or self.component in paused
        now = timezone.now()
        return Delivery(
            event=record,
            process_id=record.process_id,
            listener=self.name,
            component=self.component,
            status=DeliveryStatus.HELD if held else DeliveryStatus.SENT,
            sends=0 if held else 1,
            sent_at=None if held else now,
            next_attempt_at=None if held else now + timedelta(seconds=redeliver_after(1)),
        )


SIGNALS: dict[str, Signal] = {name: Signal() for name in EVENT_TYPES}
_registry: dict[str, Listener] = {}
_after_commit: dict[str, AfterCommit] = {}


def subscribe(
    event_type: type[Event],
    receiver: Receiver,
    *,
    listener: str,
    after_commit: AfterCommit | None = None,
) -> None:
    """Connect a listener `<component>.<name>` to an event type. What is connected to the
    event's signal records the listener's durable delivery when the event is published; the
    receiver itself runs later, in the listener's component worker."""
    component, _, short = listener.partition(".")
    if component not in COMPONENTS or not short:
        raise ValueError(f"a listener is named <component>.<name>, not {listener!r}")
    entry = Listener(listener, component, event_type.name, receiver)
    SIGNALS[event_type.name].connect(entry.record, dispatch_uid=listener, weak=False)
    _registry[listener] = entry
    if after_commit is not None:
        _after_commit[listener] = after_commit


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
    client_erased, switches = _erasure_and_switches(event)
    erased = client_erased and event.name not in ERASURE_EVENTS
    record = EventRecord(
        name=event.name,
        schema_version=event.schema_version,
        source=source,
        process_id=process_id,
        client_id=event.client_id,
        payload={} if erased else event.payload(),
    )
    plain_sql.insert_all([record])
    if process_id and isinstance(event, ClientState) and not erased:
        # crm changed the client for this process: the version a shop may read its write at.
        client_version_set(process_id=process_id, version=event.client_version)
    deliveries = [] if erased else _deliveries_for(event, record, switches)
    plain_sql.insert_all(deliveries)
    if process_id:
        _trace_published(record, deliveries, dropped=erased)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.SENT:
            relay.send_after_commit(_outgoing(delivery))
    if process_id and not deliveries:
        settle(UUID(str(process_id)))
    return record


def _erasure_and_switches(event: Event) -> tuple[bool, dict[str, str]]:
    """Whether the event's client is erased, and the switches of the event's listeners: one
    query, asked for every event published."""
    names = [entry.name for entry in listeners_of(event.name)]
    key = plain_sql.bound(ErasedClientId, "client_id", event.client_id) if event.client_id else None
    rows = plain_sql.fetch_all(_erasure_and_switches_sql(len(names)), [key, *names])
    switches = {listener: state for _, listener, state in rows if listener is not None}
    return bool(rows[0][0]), switches


@functools.cache
def _erasure_and_switches_sql(listeners: int) -> str:
    quote = connection.ops.quote_name
    erased = quote(ErasedClientId._meta.db_table)
    switch = quote(ListenerSwitch._meta.db_table)
    among = f"s.listener IN ({', '.join(['%s'] * listeners)})" if listeners else "1 = 0"
    return (
        f"SELECT EXISTS (SELECT 1 FROM {erased} WHERE client_id = %s), s.listener, s.state "
        f"FROM (SELECT 1 AS one) probe LEFT JOIN {switch} s ON {among}"
    )


def _deliveries_for(event: Event, record: EventRecord, switches: dict[str, str]) -> list[Delivery]:
    """Send the event's signal: each connected listener answers with its delivery."""
    answers = SIGNALS[record.name].send(
        sender=type(event),
        event=event,
        record=record,
        switches=switches,
        paused=components.paused_components(),
    )
    deliveries: list[Delivery] = []
    for _, answer in answers:
        if isinstance(answer, Delivery):
            deliveries.append(answer)
    return sorted(deliveries, key=lambda delivery: delivery.listener)


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
    key = plain_sql.bound(ErasedClientId, "client_id", client_id)
    return plain_sql.fetch_one(_erased_sql(), [key]) is not None


# Asked by every event published and every message sent: in plain SQL (common/plain_sql.py).
@functools.cache
def _erased_sql() -> str:
    table = connection.ops.quote_name(ErasedClientId._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE client_id = %s LIMIT 1"


def client_erased(*, client_id: UUID | str) -> bool:
    """The client's erasure is accepted (the gateway writes the tombstone when it starts): nothing
    is sent to them any more, and what is written about them is written without personal data."""
    return _is_erased(client_id)


# --- delivering (in the listener's worker) ----------------------------------------------------


def deliver(*, delivery_id: UUID) -> str:
    """Run one copy of a delivery. Returns what happened, for the worker's log."""
    run = run_count(Delivery, pk=delivery_id, open_statuses=RUNNABLE)
    if run is None:
        row = Delivery.objects.filter(pk=delivery_id).values("process_id", "status").first()
        if row is None:
            return "unknown delivery"
        if row["status"] in RUNNABLE:  # open, and its runs all ended with their worker
            with correlation.bound(row["process_id"]):
                return _dead_worker_lost(delivery_id)
        run = Run(row["process_id"])
    with correlation.bound(run.process_id):
        effect: AfterCommit | None = None
        try:
            with transaction.atomic():
                outcome = _deliver_once(delivery_id)
            if isinstance(outcome, tuple):
                effect, intent = outcome
                outcome = _run_after_commit(delivery_id, effect, intent)
        except Exception as error:  # noqa: BLE001 - recorded on the delivery, retried or dead
            logger.warning("delivery %s raised %s", delivery_id, type(error).__name__)
            _record_error(delivery_id, error, name=effect.name if effect else None)
            return f"error: {type(error).__name__}"
        if outcome != "done":
            # This copy ended without running the listener (in flight elsewhere, held, already
            # processed, skipped): its run was not one that its worker died in.
            run_uncount(Delivery, pk=delivery_id)
        return outcome


def _dead_worker_lost(delivery_id: UUID) -> str:
    """Every recent run of this delivery ended with its worker process: it is not run again. It
    is dead, and its process failed, until a person retries or replays it."""
    with transaction.atomic():
        delivery = Delivery.objects.select_related("event").select_for_update().get(pk=delivery_id)
        if delivery.status not in RUNNABLE:
            return f"ignored: delivery is {delivery.status}"
        delivery.status = DeliveryStatus.DEAD
        delivery.next_attempt_at = None
        delivery.last_error = f"worker lost: {delivery.runs} runs ended with their worker process"
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        if delivery.process_id is not None:
            trace_record(
                process_id=delivery.process_id,
                component=delivery.component,
                name=delivery.event.name,
                kind=TraceKind.FAILURE,
                status="dead",
                attempt=delivery.attempts + 1,
                detail={"error": "worker lost", "runs": delivery.runs},
            )
            process = lock_process(delivery.process_id)
            if process.status in (ProcessStatus.RUNNING, ProcessStatus.STUCK):
                lifecycle.process_finish(
                    process=process, status=ProcessStatus.FAILED, detail={"dead": delivery.listener}
                )
    logger.error("delivery %s is dead: %s", delivery_id, delivery.last_error)
    return "dead: worker lost"


def _deliver_once(delivery_id: UUID) -> str | tuple[AfterCommit, Any]:
    """The listener's transaction: its effect and the delivery done, or, for a listener with
    work outside the database, the intent it recorded (the delivery stays open)."""
    delivery = _delivery_to_run(delivery_id)
    if delivery.status not in RUNNABLE:
        return f"ignored: delivery is {delivery.status}"
    if components.component_paused(delivery.component):
        _hold(delivery)  # a copy that reached a worker of a component under maintenance
        return f"held: {delivery.component} paused"
    listener = _registry.get(delivery.listener)
    event_name = delivery.event.name
    if listener is None or (delivery.client_erased and event_name not in ERASURE_EVENTS):
        _settle_delivery(delivery, DeliveryStatus.SKIPPED, "skipped")
        return "skipped"
    effect = _after_commit.get(delivery.listener)
    # With work after commit, the processed record is written with its outcome: a retry after a
    # failed send must find the intent again, not a record that says it is done.
    if not (_unprocessed(delivery) if effect else _claim(delivery)):
        return "ignored: already processed"
    with trace_batch():  # what it publishes and the delivery done: one trace write
        if delivery.process_stuck:  # work reached a stuck process: it runs again
            lifecycle.process_wake(process=lock_process(delivery.process_id))
        event = EVENT_TYPES[event_name].from_payload(delivery.event.payload)
        intent = listener.receiver(sender=type(event), event=event)
        if effect is not None:
            return effect, intent
        _settle_delivery(delivery, DeliveryStatus.DONE, "done")
    return "done"


# Every delivery's transaction starts with this read: in plain SQL (common/plain_sql.py says why).
@functools.cache
def _delivery_to_run_sql() -> str:
    quote = connection.ops.quote_name
    erased, process = (quote(model._meta.db_table) for model in (ErasedClientId, Process))
    delivery, event = (quote(model._meta.db_table) for model in (Delivery, EventRecord))
    return (
        f"SELECT {plain_sql.columns(Delivery, 'd')}, {plain_sql.columns(EventRecord, 'e')},"
        f" EXISTS (SELECT 1 FROM {erased} x WHERE x.client_id = e.client_id),"
        f" EXISTS (SELECT 1 FROM {process} p WHERE p.id = d.process_id AND p.status = %s)"
        f" FROM {delivery} d JOIN {event} e ON e.id = d.event_id WHERE d.id = %s"
    )


def _delivery_to_run(delivery_id: UUID) -> Any:
    """The delivery with its event, whether the event's client is erased (`client_erased`) and
    whether its process is stuck (`process_stuck`): one query."""
    row = plain_sql.fetch_one(
        _delivery_to_run_sql(),
        [ProcessStatus.STUCK, plain_sql.bound(Delivery, "id", delivery_id)],
    )
    if row is None:
        raise Delivery.DoesNotExist(f"no delivery {delivery_id}")
    width = len(Delivery._meta.concrete_fields)
    delivery: Any = plain_sql.instance(Delivery, row[:width])
    delivery.event = plain_sql.instance(EventRecord, row[width:-2])
    delivery.client_erased, delivery.process_stuck = bool(row[-2]), bool(row[-1])
    return delivery


def _claim(delivery: Delivery) -> bool:
    """Write the processed record; False when another copy already did (its transaction won)."""
    return processed_claim(message_id=delivery.id, consumer=delivery.listener)


def _unprocessed(delivery: Delivery) -> bool:
    return not processed_already(message_id=delivery.id, consumer=delivery.listener)


def _run_after_commit(delivery_id: UUID, effect: AfterCommit, intent: Any) -> str:
    """Outside every transaction: the listener's work, which settles the delivery inside the
    transaction that records its outcome."""
    outcome = "ignored: in flight in another worker"

    def settle_effect(status: str, *events: Event) -> None:
        nonlocal outcome
        outcome = _settle_effect(delivery_id, effect.name, status, events)

    effect.run(intent, settle_effect)
    return outcome


def _settle_effect(delivery_id: UUID, name: str, status: str, events: tuple[Event, ...]) -> str:
    delivery = Delivery.objects.select_related("event").select_for_update().get(pk=delivery_id)
    if delivery.status not in RUNNABLE:
        return f"ignored: delivery is {delivery.status}"
    if not _claim(delivery):
        return "ignored: already processed"
    with trace_batch():  # the outcome, what it publishes and the delivery done: one trace write
        if delivery.process_id:
            trace_record(
                process_id=delivery.process_id,
                component=delivery.component,
                name=name,
                kind=TraceKind.STEP,
                status=status,
                attempt=delivery.attempts + 1,
                detail={"listener": delivery.listener},
            )
        for event in events:
            publish(event, source=delivery.component)
        _settle_delivery(delivery, DeliveryStatus.DONE, "done")
    return "done"


def _settle_delivery(delivery: Delivery, status: str, trace_status: str) -> None:
    delivery.status = status
    delivery.done_at = timezone.now()
    delivery.next_attempt_at = None
    if not delivery.process_id:
        plain_sql.update(delivery, ["status", "done_at", "next_attempt_at"])
        return
    # The process row is locked first, so that "is anything else left open?" is asked of what
    # the process's other deliveries committed before this one got the lock; asked with the
    # update that settles this one: one statement where two were.
    process = lock_process(delivery.process_id)
    others_open = _settled_others_open(delivery)
    trace_record(
        process_id=delivery.process_id,
        component=delivery.component,
        name=delivery.event.name,
        kind=TraceKind.DELIVERY,
        status=trace_status,
        attempt=delivery.attempts + 1,
        detail={"listener": delivery.listener},
    )
    _process_settle(process, open_left=lambda: others_open)


def _open_statuses() -> str:
    return ", ".join(f"'{status!s}'" for status in OPEN)  # our own constants, not input


@functools.cache
def _open_delivery_sql() -> str:
    table = connection.ops.quote_name(Delivery._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE process_id = %s AND status IN ({_open_statuses()}) LIMIT 1"


@functools.cache
def _settled_sql() -> str:
    table = connection.ops.quote_name(Delivery._meta.db_table)
    return (
        f"UPDATE {table} SET status = %s, done_at = %s, next_attempt_at = NULL WHERE id = %s"
        f" RETURNING EXISTS (SELECT 1 FROM {table} other WHERE other.process_id = %s"
        f" AND other.status IN ({_open_statuses()}) AND other.id <> %s)"
    )


def _settled_others_open(delivery: Delivery) -> bool:
    """Write the delivery's outcome; whether another delivery of its process is still open
    (asked under the process row's lock: a later statement sees what was committed before)."""
    key = plain_sql.bound(Delivery, "id", delivery.pk)
    process = plain_sql.bound(Delivery, "process", delivery.process_id)
    done_at = plain_sql.bound(Delivery, "done_at", delivery.done_at)
    row = plain_sql.fetch_one(_settled_sql(), [delivery.status, done_at, key, process, key])
    if row is None:
        raise DatabaseError(f"Delivery {delivery.pk} is gone: nothing was updated")
    return bool(row[0])


def settle(process_id: UUID) -> None:
    """Something of a process was delivered or dropped: under the process row's lock, complete
    it when nothing is left to deliver for its correlation id (fail it when something is left
    dead)."""
    process = lock_process(process_id)
    key = plain_sql.bound(Process, "id", process_id)
    _process_settle(process, open_left=lambda: plain_sql.fetch_one(_open_delivery_sql(), [key]))


def _process_settle(process: Process, *, open_left: Callable[[], Any]) -> None:
    """The process (locked) after a delivery settled: woken while `open_left()`, else done."""
    if process.mode != IntegrationMode.CHOREOGRAPHY:
        return
    if process.status not in (ProcessStatus.RUNNING, ProcessStatus.STUCK):
        return
    if open_left():
        lifecycle.process_wake(process=process)
        return
    dead = (
        Delivery.objects.filter(process_id=process.id, status=DeliveryStatus.DEAD)
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


def _record_error(delivery_id: UUID, error: BaseException, *, name: str | None = None) -> None:
    """A listener (or its work after commit, traced under `name`) raised: retry or dead."""
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
        delivery.runs = 0  # this run ended with an outcome: it did not take its worker down
        delivery.save()
        if delivery.process_id is None:
            return
        detail: dict[str, Any] = {"listener": delivery.listener, "error": type(error).__name__}
        if not dead:
            detail["retry_in"] = round(delay, 3)
        trace_record(
            process_id=delivery.process_id,
            component=delivery.component,
            name=name or delivery.event.name,
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
    unanswered = Delivery.objects.filter(status=DeliveryStatus.SENT, next_attempt_at__lte=now)
    backlogged = backlog.components_backlogged(
        unanswered.values_list("component", flat=True).distinct(), now=now
    )
    with transaction.atomic():
        due = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status__in=RUNNABLE, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        paused = components.paused_components()
        held = [delivery for delivery in due if delivery.component in paused]
        for delivery in held:
            _hold(delivery)
        due = [delivery for delivery in due if delivery.component not in paused]
        queued = [
            delivery
            for delivery in due
            if delivery.status == DeliveryStatus.SENT
            and backlog.waits_its_turn(delivery.component, delivery.sent_at, backlogged, now)
        ]
        for delivery in queued:
            delivery.next_attempt_at = now + timedelta(seconds=redeliver_after(delivery.sends))
        Delivery.objects.bulk_update(queued, ["next_attempt_at"])
        waiting = {delivery.pk for delivery in queued}
        due = [delivery for delivery in due if delivery.pk not in waiting]
        for delivery in due:
            delivery.status = DeliveryStatus.SENT
            delivery.sends += 1
            delivery.sent_at = now
            delivery.next_attempt_at = now + timedelta(seconds=redeliver_after(delivery.sends))
            relay.send_after_commit(_outgoing(delivery))
        Delivery.objects.bulk_update(due, ["status", "sends", "sent_at", "next_attempt_at"])
    return len(due) + len(held)


def _hold(delivery: Delivery) -> None:
    """Its component is paused: the delivery waits in the database, spending nothing."""
    delivery.status = DeliveryStatus.HELD
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "next_attempt_at"])


# --- people's actions -------------------------------------------------------------------------


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
    if components.component_paused(delivery.component):
        delivery.attempts = 0
        delivery.runs = 0
        delivery.save()
        _hold(delivery)
        return
    delivery.status = DeliveryStatus.SENT
    delivery.attempts = 0
    delivery.sends += 1
    delivery.sent_at = now
    delivery.next_attempt_at = now + timedelta(seconds=redeliver_after(delivery.sends))
    delivery.last_error = ""
    delivery.traceback = ""
    delivery.runs = 0
    delivery.save()
    relay.send_after_commit(_outgoing(delivery))


def publish_to(events: Sequence[Event], *, listener: str, source: str) -> list[Delivery | None]:
    """Record events for one listener only (a replica repair: the others hold them already): an
    EventRecord and one delivery each, inside the caller's transaction; the deliveries go on the
    broker after commit. The switches are honoured as for any event: held while the listener or
    its component is paused, nothing while it is disabled; nothing is sent about an erased client
    but its erasure. Returns each event's delivery (None: nothing sent), in order."""
    entry = _registry.get(listener)
    unheard = [event.name for event in events if entry is None or event.name != entry.event]
    if unheard:
        raise ApplicationError(f"{listener} does not listen to {unheard[0]}")
    assert entry is not None
    switches = dict(
        ListenerSwitch.objects.filter(listener=listener).values_list("listener", "state")
    )
    if switches.get(listener) == ListenerState.DISABLED:
        return [None] * len(events)
    erased = set() if entry.event in ERASURE_EVENTS else _erased_among(events)
    paused = components.paused_components()
    records: list[EventRecord] = []
    answers: list[Delivery | None] = []
    for event in events:
        if event.client_id in erased:
            answers.append(None)
            continue
        record = EventRecord(
            name=event.name,
            schema_version=event.schema_version,
            source=source,
            client_id=event.client_id,
            payload=event.payload(),
        )
        records.append(record)
        answers.append(entry.record(type(event), record, switches, paused))
    EventRecord.objects.bulk_create(records)
    deliveries = [delivery for delivery in answers if delivery is not None]
    plain_sql.insert_all(deliveries)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.SENT:
            relay.send_after_commit(_outgoing(delivery))
    return answers


def _erased_among(events: Sequence[Event]) -> set[str]:
    client_ids = {event.client_id for event in events if event.client_id}
    erased = ErasedClientId.objects.filter(client_id__in=client_ids)
    return {str(client_id) for client_id in erased.values_list("client_id", flat=True)}


def release_held(*, listener: str) -> int:
    """A paused listener resumes: its held deliveries go out in the order they were published
    (unless its component is paused: they wait for the component)."""
    entry = _registry.get(listener)
    if entry is not None and components.component_paused(entry.component):
        return 0
    return _release(Delivery.objects.filter(listener=listener, status=DeliveryStatus.HELD))


def release_component(*, component: str) -> int:
    """A paused component resumes: the deliveries it held go out in the order they were
    published, except those of its listeners that are paused themselves."""
    paused_listeners = ListenerSwitch.objects.filter(state=ListenerState.PAUSED).values("listener")
    return _release(
        Delivery.objects.filter(component=component, status=DeliveryStatus.HELD).exclude(
            listener__in=paused_listeners
        )
    )


def _release(held: Any) -> int:
    deliveries = list(held.select_related("event").order_by("event__published_at", "created_at"))
    for delivery in deliveries:
        _resend(delivery)
    return len(deliveries)


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
