"""What the staff pages show: reads that span the apps, shaped for templates.

Every function here reads; writes go through the gateway, the engine, the bus and lifecycle.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString

from common.errors import NotFound
from integration import bus, gateway
from integration.choreography import reconcile, switches
from integration.core import components, modes, tally
from integration.events import EVENT_TYPES
from integration.models import (
    Delivery,
    DeliveryStatus,
    IntegrationMode,
    Process,
    ProcessStatus,
    ReconcileRun,
    Step,
    StepStatus,
    TraceEntry,
    TraceKind,
)
from integration.orchestrator.definitions import all_definitions
from staff import diagrams
from staff.teams import VIEW_PROCESSES

ORCHESTRATOR = "integration"
LATEST_FAILURES = 10
CLIENT_PROCESSES = 50
EDITABLE_FIELDS = (*gateway.PROFILE_FIELDS, "marketing_consent")


def may_follow(user: Any, process: Process) -> bool:
    """Operations follow every process; the person who started one may always follow it."""
    if not user.is_authenticated:
        return False
    return bool(user.has_perm(VIEW_PROCESSES) or process.initiator_user_id == user.pk)


# --- the dashboard ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusRow:
    status: str
    label: str
    counts: list[int]
    total: int


@dataclass(frozen=True)
class DashboardFigures:
    mode: str
    modes: list[str]
    rows: list[StatusRow]
    totals: list[int]
    stuck: int
    dead_deliveries: int
    failed_steps: int
    latest_failures: list[TraceEntry] = field(default_factory=list)
    reconcile: ReconcileRun | None = None  # the last comparison of the replicas with crm

    @property
    def total(self) -> int:
        return sum(self.totals)


def dashboard_figures() -> DashboardFigures:
    """Processes by status and mode, what needs a person, and the latest failures."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for (_, mode, status), n in tally.process_counts().items():
        counts[(status, mode)] += n
    mode_values = list(IntegrationMode.values)
    rows = []
    for status, label in ProcessStatus.choices:
        by_mode = [counts.get((status, mode), 0) for mode in mode_values]
        rows.append(StatusRow(status=status, label=label, counts=by_mode, total=sum(by_mode)))
    totals = [sum(row.counts[i] for row in rows) for i in range(len(mode_values))]
    failures = list(
        TraceEntry.objects.filter(kind=TraceKind.FAILURE)
        .select_related("process")
        .order_by("-id")[:LATEST_FAILURES]
    )
    return DashboardFigures(
        mode=modes.mode_get(),
        modes=mode_values,
        rows=rows,
        totals=totals,
        stuck=counts_of(counts, ProcessStatus.STUCK),
        dead_deliveries=Delivery.objects.filter(status=DeliveryStatus.DEAD).count(),
        failed_steps=Step.objects.filter(status=StepStatus.FAILED).count(),
        latest_failures=failures,
        reconcile=reconcile.reconcile_last(),
    )


def counts_of(counts: dict[tuple[str, str], int], status: str) -> int:
    return sum(n for (row_status, _), n in counts.items() if row_status == status)


def processes_started_by(*, user: Any, limit: int = 10) -> list[Process]:
    return list(Process.objects.filter(initiator_user=user).order_by("-started_at")[:limit])


# --- finding a client ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRow:
    """One line of the client search, formatted here once: per line, the template's `url` tag
    and two `date` filters cost more than the rest of the page (a full page of 25 took half again
    the time of a page of one)."""

    url: str
    name: str
    email: str
    company: str
    registered_at: str  # ISO 8601, for the <time> element
    registered_on: str  # the day, as staff read it


def client_rows(clients: Iterable[Any]) -> list[ClientRow]:
    placeholder = str(UUID(int=0))
    url = reverse("integration:client", kwargs={"client_id": placeholder})
    rows = []
    for client in clients:
        registered = timezone.localtime(client.registered_at)
        rows.append(
            ClientRow(
                url=url.replace(placeholder, str(client.id)),
                name=f"{client.first_name} {client.last_name}",
                email=client.email,
                company=client.company,
                registered_at=registered.isoformat(),
                registered_on=formats.date_format(registered, "j M Y"),
            )
        )
    return rows


# --- a client -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientPage:
    client_id: UUID
    profile: dict[str, Any]
    communications: list[dict[str, Any]]
    purchases: list[dict[str, Any]]
    served_by: dict[str, Any]
    processes: list[Process]


def client_page(*, client_id: UUID) -> ClientPage:
    """The client's details as the gateway serves them in the current mode, with its processes."""
    try:
        details = gateway.client_details(client_id=client_id)
    except NotFound:
        raise Http404("No client with this id.") from None
    profile = {key: details.get(key) for key in ("email", "first_name", "last_name", "phone")}
    profile.update(
        company=details.get("company"),
        marketing_consent=details.get("marketing_consent"),
        registered_at=_when(details.get("registered_at")),
    )
    return ClientPage(
        client_id=client_id,
        profile=profile,
        communications=[_with_time(item, "occurred_at") for item in details["communications"]],
        purchases=[_with_time(item, "purchased_at") for item in details["purchases"]],
        served_by={**details["served_by"], "as_of": _when(details["served_by"].get("as_of"))},
        processes=list(
            Process.objects.filter(client_id=client_id).order_by("-started_at")[:CLIENT_PROCESSES]
        ),
    )


def _when(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _with_time(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {**item, key: _when(item.get(key))}


@dataclass(frozen=True)
class ClientProfile:
    """A client's profile as crm keeps it now: what the edit form starts from and compares to,
    and whom the erasure page names."""

    client_id: UUID
    profile: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.profile['first_name']} {self.profile['last_name']}".strip()


def client_profile(*, client_id: UUID) -> ClientProfile:
    """crm's own row, not the mode's details: a component that is slow to answer must never
    leave the edit form with blanks that would read as changes."""
    try:
        client = gateway.client_record(client_id=client_id)
    except NotFound:
        raise Http404("No client with this id.") from None
    return ClientProfile(
        client_id=client_id,
        profile={name: getattr(client, name) for name in EDITABLE_FIELDS},
    )


# --- a process ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessPage:
    process: Process
    trace: list[TraceEntry]
    steps: list[Step]
    deliveries: list[Delivery]

    @property
    def last_seq(self) -> int:
        return self.trace[-1].seq if self.trace else 0

    @property
    def diagram(self) -> SafeString:
        return diagrams.trace_svg(self.trace)

    @property
    def waiting_for(self) -> list[str]:
        """The paused components whose held work this process waits for."""
        return waiting_for(self.steps, self.deliveries)


def waiting_for(steps: list[Step], deliveries: list[Delivery]) -> list[str]:
    held = {step.component for step in steps if step.status == StepStatus.HELD}
    held |= {d.component for d in deliveries if d.status == DeliveryStatus.HELD}
    return sorted(held & components.paused_components())


def process_page(*, process_id: UUID) -> ProcessPage:
    # The trace is read before the process: a step that commits between the two reads then
    # shows in the status, and its entries reach the page after it (live pages ask for what came
    # after the last entry shown). The other way round, a page could show every entry of a
    # finished process with the status it had before, and nothing new would ever follow.
    trace = list(trace_of(process_id=process_id))
    process = Process.objects.select_related("initiator_user", "initiator_token").filter(
        pk=process_id
    )
    found = process.first()
    if found is None:
        raise Http404("No process with this id.")
    return ProcessPage(
        process=found,
        trace=trace,
        steps=list(Step.objects.filter(process_id=process_id).order_by("position")),
        deliveries=list(
            Delivery.objects.filter(process_id=process_id)
            .select_related("event")
            .order_by("created_at")
        ),
    )


def trace_of(*, process_id: UUID, after: int = 0) -> QuerySet[TraceEntry]:
    return TraceEntry.objects.filter(process_id=process_id, seq__gt=after).order_by("seq")


# --- the integration map ----------------------------------------------------------------------

# Who publishes each event (the bus registry knows only who listens).
PUBLISHED_BY = {
    "ClientRegistered": "integration",
    "ClientUpdateRequested": "integration",
    "PurchaseRequested": "integration",
    "ClientErasureRequested": "integration",
    "ClientCreated": "crm",
    "ClientUpdated": "crm",
    "CommunicationRecorded": "crm",
    "ClientErased": "crm",
    "PurchaseRecorded": "sales",
    "WelcomeEmailSent": "correspondence",
    "ReceiptSent": "correspondence",
}


@dataclass(frozen=True)
class Subscription:
    event: str
    publisher: str
    listeners: list[tuple[str, str, str]]  # (listener, component, state)


@dataclass(frozen=True)
class FieldReach:
    """A field, what carries it in one mode, and every component a change to it touches."""

    name: str
    carriers: list[str]  # events, or process steps
    components: list[str]


@dataclass(frozen=True)
class IntegrationMap:
    mode: str
    definitions: list[Any]
    subscriptions: list[Subscription]
    orchestration_svg: SafeString
    choreography_svg: SafeString
    orchestration_fields: list[FieldReach] = field(default_factory=list)
    choreography_fields: list[FieldReach] = field(default_factory=list)


def integration_map() -> IntegrationMap:
    """Who commands whom (the orchestrator's process definitions) and who listens to whom (the
    bus's registry of listeners, with their switches), drawn from the live registries."""
    definitions = sorted(all_definitions(), key=lambda definition: definition.kind)
    states = {name: state for name, state, _ in switches.listener_states()}
    by_event: dict[str, list[tuple[str, str, str]]] = {}
    for listener in bus.registry():
        state = states.get(listener.name, "enabled")
        by_event.setdefault(listener.event, []).append((listener.name, listener.component, state))
    subscriptions = [
        Subscription(event, PUBLISHED_BY.get(event, "integration"), by_event[event])
        for event in sorted(by_event, key=_event_order)
    ]
    return IntegrationMap(
        mode=modes.mode_get(),
        definitions=definitions,
        subscriptions=subscriptions,
        orchestration_svg=diagrams.sequence_svg(
            diagrams.orchestration_rows(definitions),
            title="Orchestration: who commands whom",
            description="The orchestrator sends each step of each process to its component.",
        ),
        choreography_svg=diagrams.sequence_svg(
            diagrams.choreography_rows(
                (sub.event, sub.publisher, sub.listeners) for sub in subscriptions
            ),
            title="Choreography: who listens to whom",
            description="Each event, the component that publishes it and its switches.",
        ),
        orchestration_fields=orchestrated_fields(definitions),
        choreography_fields=choreographed_fields(),
    )


def orchestrated_fields(definitions: list[Any]) -> list[FieldReach]:
    """Each field a step reads (StepDefinition.reads; every step is handed the client id), the
    steps that read it, and their components. The orchestrator holds the process's input and
    every step's result and hands them on, so a change to any field touches it too."""
    carriers: dict[str, list[str]] = {"client_id": ["every step of every process"]}
    components: dict[str, set[str]] = {"client_id": {ORCHESTRATOR}}
    for definition in definitions:
        for step in definition.steps:
            components["client_id"].add(step.component)
            for read in step.reads:
                source, _, key = read.rpartition(".")
                carrier = f"{definition.kind}: {step.name}" + (
                    f" (from {source})" if source else ""
                )
                carriers.setdefault(key, []).append(carrier)
                components.setdefault(key, {ORCHESTRATOR}).add(step.component)
    return _reach(carriers, components)


def choreographed_fields() -> list[FieldReach]:
    """Each field of each event (integration/events.py), the events that carry it, and who
    publishes or listens to them (the bus's registry: a disabled listener still reads them)."""
    listeners: dict[str, set[str]] = {}
    for listener in bus.registry():
        listeners.setdefault(listener.event, set()).add(listener.component)
    carriers: dict[str, list[str]] = {}
    components: dict[str, set[str]] = {}
    for name in sorted(EVENT_TYPES, key=_event_order):
        touched = {PUBLISHED_BY.get(name, ORCHESTRATOR), *listeners.get(name, ())}
        for event_field in dataclasses.fields(EVENT_TYPES[name]):
            if event_field.name == "schema_version":
                continue
            carriers.setdefault(event_field.name, []).append(name)
            components.setdefault(event_field.name, set()).update(touched)
    return _reach(carriers, components)


def _reach(carriers: dict[str, list[str]], components: dict[str, set[str]]) -> list[FieldReach]:
    names = sorted(carriers, key=lambda name: (name != "client_id", name))
    return [FieldReach(name, carriers[name], sorted(components[name])) for name in names]


def _event_order(event: str) -> tuple[int, str]:
    order = list(PUBLISHED_BY)
    return (order.index(event) if event in order else len(order), event)
