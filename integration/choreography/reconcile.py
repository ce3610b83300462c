"""Replica repair: every replica compared with its owner, and what differs sent to it again.

Choreography keeps copies of crm's clients: sales' customers and communications, correspondence's
recipients, marketing's audience. A copy holds crm's per-client version of the change it last
applied. crm's version also moves when a purchase or a communication is recorded, which changes
nothing a copy holds and publishes no ClientUpdated: a copy below crm's version is behind only
when what it holds differs from crm's current values.

Per replica and client, a difference is one of
- `missing`: crm has the client (a consenting one, for the audience) and the copy lacks it;
- `extra`: the copy holds a client crm no longer has (erased: owner=0), or an audience member
  whose consent crm has since withdrawn;
- a version: the copy is behind (an older version that differs from crm's current values).
For communications the version is a count: how many communications crm holds for the client, and
how many of them the copy holds (crm never removes one alone; an erasure removes them all).

Work in flight is not drift: a client with a delivery to the replica's listeners still open (held
for a paused listener too), or settled while the comparison ran, is left out, because that
delivery brings the copy along. A disabled listener or a dead delivery leaves a difference.

A repair goes through the bus, never into another app's tables: the owner's current state, sent
to the lagging listener alone (ClientUpdated with the whole profile at crm's current version,
CommunicationRecorded, or ClientErased for an extra). Listeners take only newer versions, so a
repair never moves a copy backwards.

Sales' and correspondence's copies are kept in choreography only (orchestration asks the owners);
in orchestration only marketing's audience, which both modes keep, is compared.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from correspondence.models import Recipient
from crm.models import Client, Communication
from integration import bus
from integration.core import modes
from integration.events import ClientErased, ClientUpdated, CommunicationRecorded, Event
from integration.models import DELIVERY_OPEN, Delivery, IntegrationMode, ReconcileRun
from marketing.models import DEFAULT_AUDIENCE, AudienceMember
from sales.models import CommunicationReplica, CustomerReplica

CHUNK = 5_000  # clients compared at a time: memory stays bounded, each query short
REPAIR_BATCH = 500
SOURCE = "integration"
MISSING = "missing"
EXTRA = "extra"
ERASED = 0  # the owner's version of a client crm no longer has
# What a copy holds that crm may change (registered_at is set once, when the client is created).
PROFILE = ("email", "first_name", "last_name", "phone", "company", "marketing_consent")
RECIPIENT = ("email", "first_name")

Row = Any  # a named row of values_list(named=True)
Key = str  # a client id as the database's text: 100k ids compare without a UUID object each
Owners = dict[Key, Row]


@dataclass(frozen=True)
class Span:
    """The client ids of one chunk: after `after`, up to and including `upto` (None: no bound)."""

    after: UUID | None
    upto: UUID | None

    def of(self, name: str) -> Q:
        bounds = Q()
        if self.after is not None:
            bounds &= Q(**{f"{name}__gt": self.after})
        if self.upto is not None:
            bounds &= Q(**{f"{name}__lte": self.upto})
        return bounds


@dataclass(frozen=True)
class Difference:
    replica: str
    client_id: UUID
    owner: int
    held: int | str  # the copy's version, MISSING or EXTRA

    def line(self) -> str:
        return f"{self.replica} {self.client_id} owner={self.owner} replica={self.held}"


Compare = Callable[[Owners, Span], list[Difference]]


@dataclass(frozen=True)
class Replica:
    name: str
    compare: Compare
    listeners: tuple[str, ...]  # whoever keeps it: an open delivery to one is work in flight
    update: str  # the listener a repair sends the owner's state to
    erase: str
    both_modes: bool = False


@dataclass(frozen=True)
class Reconciliation:
    started_at: datetime
    finished_at: datetime
    replicas: tuple[str, ...]
    clients: int
    differences: list[Difference] = field(default_factory=list)
    repaired: int = 0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.replicas, 0)
        for difference in self.differences:
            counts[difference.replica] += 1
        return counts

    def lines(self) -> list[str]:
        return [difference.line() for difference in self.differences]


# --- comparing ----------------------------------------------------------------------------------


def _behind(copy: Row, owner: Row, names: tuple[str, ...]) -> bool:
    """An older version of the client that differs from crm's current values."""
    values = attrgetter(*names)
    return bool(copy.client_version < owner.version) and values(copy) != values(owner)


def _key(name: str) -> Cast:
    return Cast(name, output_field=CharField())


def _extras(replica: str, held: Iterable[Key], owners: Owners) -> list[Difference]:
    return [Difference(replica, UUID(key), ERASED, EXTRA) for key in held if key not in owners]


def _profiles_compare(
    replica: str, copies: dict[Key, Row], owners: Owners, names: tuple[str, ...]
) -> list[Difference]:
    found = []
    for key, owner in owners.items():
        copy = copies.get(key)
        if copy is None:
            found.append(Difference(replica, UUID(key), owner.version, MISSING))
        elif _behind(copy, owner, names):
            found.append(Difference(replica, UUID(key), owner.version, copy.client_version))
    return found + _extras(replica, copies, owners)


def _customers_compare(owners: Owners, span: Span) -> list[Difference]:
    rows = (
        CustomerReplica.objects.filter(span.of("client_id"))
        .annotate(key=_key("client_id"))
        .order_by()
        .values_list("key", "client_version", *PROFILE, named=True)
    )
    copies = {row.key: row for row in rows}
    return _profiles_compare("sales.customers", copies, owners, PROFILE)


def _recipients_compare(owners: Owners, span: Span) -> list[Difference]:
    rows = (
        Recipient.objects.filter(span.of("client_id"))
        .annotate(key=_key("client_id"))
        .order_by()
        .values_list("key", "client_version", *RECIPIENT, named=True)
    )
    copies = {row.key: row for row in rows}
    return _profiles_compare("correspondence.recipients", copies, owners, RECIPIENT)


def _audience_compare(owners: Owners, span: Span) -> list[Difference]:
    """Consenting clients are members with their current email; a client without consent is
    not (a member who left keeps a row, so that an older event cannot bring them back)."""
    rows = (
        AudienceMember.objects.filter(span.of("client_id"), audience=DEFAULT_AUDIENCE)
        .annotate(key=_key("client_id"))
        .order_by()
        .values_list("key", "client_version", "consent", "email", named=True)
    )
    members: dict[Key, Row] = {row.key: row for row in rows}
    found = []
    for key, owner in owners.items():
        held = _membership_differs(members.get(key), owner)
        if held is not None:
            found.append(Difference("marketing.audience", UUID(key), owner.version, held))
    return found + _extras("marketing.audience", members, owners)


def _membership_differs(member: Row | None, owner: Row) -> int | str | None:
    """MISSING, EXTRA, or the member's older version; None when the membership is right."""
    if member is None:
        return MISSING if owner.marketing_consent else None
    if not owner.marketing_consent:
        return EXTRA if member.consent else None  # consent withdrawn, the member stayed
    behind = member.client_version < owner.version and (
        not member.consent or member.email != owner.email
    )
    return int(member.client_version) if behind else None


def _communications_compare(owners: Owners, span: Span) -> list[Difference]:
    owned = _ids_by_client(Communication.objects.filter(span.of("client_id")))
    held = _ids_by_client(CommunicationReplica.objects.filter(span.of("client_id")))
    found = []
    for key, ids in owned.items():
        kept = len(ids & held.get(key, set()))
        if kept < len(ids):
            found.append(Difference("sales.communications", UUID(key), len(ids), kept or MISSING))
    return found + _extras("sales.communications", held, owners)


def _ids_by_client(rows: Any) -> dict[Key, set[Key]]:
    ids: dict[Key, set[Key]] = defaultdict(set)
    pairs = rows.annotate(row=_key("id"), key=_key("client_id")).order_by()
    for row_id, key in pairs.values_list("row", "key"):
        ids[key].add(row_id)
    return ids


REPLICAS = (
    Replica(
        "sales.customers",
        _customers_compare,
        ("sales.replicate_client", "sales.replicate_client_update", "sales.erase_client"),
        update="sales.replicate_client_update",
        erase="sales.erase_client",
    ),
    Replica(
        "sales.communications",
        _communications_compare,
        ("sales.replicate_communication", "sales.erase_client"),
        update="sales.replicate_communication",
        erase="sales.erase_client",
    ),
    Replica(
        "correspondence.recipients",
        _recipients_compare,
        (
            "correspondence.remember_recipient",
            "correspondence.update_recipient",
            "correspondence.erase_client",
        ),
        update="correspondence.update_recipient",
        erase="correspondence.erase_client",
    ),
    Replica(
        "marketing.audience",
        _audience_compare,
        ("marketing.join_audience", "marketing.sync_audience", "marketing.erase_client"),
        update="marketing.sync_audience",
        erase="marketing.erase_client",
        both_modes=True,
    ),
)
BY_NAME = {replica.name: replica for replica in REPLICAS}


def replicas_kept() -> tuple[Replica, ...]:
    """The replicas the current mode keeps up to date."""
    if modes.mode_get() == IntegrationMode.CHOREOGRAPHY:
        return REPLICAS
    return tuple(replica for replica in REPLICAS if replica.both_modes)


def replicas_compare(
    *, chunk: int = CHUNK, replicas: tuple[Replica, ...] | None = None
) -> Reconciliation:
    """Compare every replica the mode keeps (or those given) with crm, a chunk of clients at a
    time."""
    started_at = timezone.now()
    replicas = replicas_kept() if replicas is None else replicas
    found: list[Difference] = []
    clients = 0
    for owners, span in _owner_chunks(chunk=chunk):
        clients += len(owners)
        for replica in replicas:
            found += replica.compare(owners, span)
    in_flight = _in_flight(replicas, since=started_at)
    differences = sorted(
        (d for d in found if (d.replica, d.client_id) not in in_flight),
        key=lambda d: (d.replica, str(d.client_id)),
    )
    return Reconciliation(
        started_at=started_at,
        finished_at=timezone.now(),
        replicas=tuple(replica.name for replica in replicas),
        clients=clients,
        differences=differences,
    )


def _owner_chunks(*, chunk: int) -> Iterator[tuple[Owners, Span]]:
    """crm's clients in id order, `chunk` at a time; the last span is open-ended, so that copies
    of clients beyond crm's last id are compared too."""
    after: UUID | None = None
    while True:
        rows = Client.objects.annotate(key=_key("id")).order_by("id")
        if after is not None:
            rows = rows.filter(id__gt=after)
        owners = list(rows.values_list("key", "version", *PROFILE, named=True)[:chunk])
        last = len(owners) < chunk
        upto = None if last else UUID(owners[-1].key)
        yield {row.key: row for row in owners}, Span(after, upto)
        if last:
            return
        after = upto


def _in_flight(replicas: Iterable[Replica], *, since: datetime) -> set[tuple[str, UUID]]:
    """(replica, client) with a delivery to the replica's listeners still open, or made or
    settled since the comparison began (it may have moved a copy after it was read)."""
    keepers: dict[str, list[str]] = defaultdict(list)
    for replica in replicas:
        for listener in replica.listeners:
            keepers[listener].append(replica.name)
    rows = (
        Delivery.objects.filter(listener__in=list(keepers), event__client_id__isnull=False)
        .filter(Q(status__in=DELIVERY_OPEN) | Q(created_at__gte=since) | Q(done_at__gte=since))
        .order_by()
        .values_list("listener", "event__client_id")
        .distinct()
    )
    flying: set[tuple[str, UUID]] = set()
    for listener, client_id in rows:
        flying.update((name, client_id) for name in keepers[listener] if client_id)
    return flying


def replicas_check(*, by: str) -> Reconciliation:
    """Compare, and keep what was found (a check changes nothing: it is not audited)."""
    found = replicas_compare()
    reconcile_record(reconciliation=found, by=by)
    return found


def reconcile_record(*, reconciliation: Reconciliation, by: str) -> ReconcileRun:
    """Keep what a reconcile found, per replica (the admin lists them; the dashboard and
    /metrics' ensemble_replica_drift show the last one)."""
    return ReconcileRun.objects.create(
        started_at=reconciliation.started_at,
        finished_at=reconciliation.finished_at,
        by=by,
        clients=reconciliation.clients,
        differences=reconciliation.counts(),
        repaired=reconciliation.repaired,
    )


def reconcile_last() -> ReconcileRun | None:
    return ReconcileRun.objects.order_by("-started_at", "-id").first()


# --- repairing ----------------------------------------------------------------------------------


def replicas_repair(*, differences: list[Difference]) -> int:
    """Send each difference the owner's current state, to its lagging listener alone, inside the
    caller's transaction (the deliveries go out after commit). Returns the differences repaired:
    those with something sent (a disabled listener gets nothing)."""
    erased = [d for d in differences if d.owner == ERASED]
    current = [d for d in differences if d.owner != ERASED]
    repaired = _erase(erased)
    for start in range(0, len(current), REPAIR_BATCH):
        repaired += _bring_up(current[start : start + REPAIR_BATCH])
    return repaired


def _erase(differences: list[Difference]) -> int:
    """ClientErased once per listener and client (sales keeps two copies: one erasure)."""
    copies = Counter((BY_NAME[d.replica].erase, d.client_id) for d in differences)
    repaired = 0
    for listener in sorted({listener for listener, _ in copies}):
        keys = [key for key in copies if key[0] == listener]
        events = [ClientErased(client_id=str(client_id)) for _, client_id in keys]
        answers = bus.publish_to(events, listener=listener, source=SOURCE)
        sent = zip(keys, answers, strict=True)
        repaired += sum(copies[key] for key, answer in sent if answer is not None)
    return repaired


def _bring_up(batch: list[Difference]) -> int:
    """Clients crm still has: their current state to the listener that keeps each copy."""
    clients = Client.objects.in_bulk([d.client_id for d in batch])
    unheld = _unheld_communications(
        [d.client_id for d in batch if d.replica == "sales.communications"]
    )
    planned: dict[str, list[tuple[int, Event]]] = defaultdict(list)
    for position, difference in enumerate(batch):
        client = clients.get(difference.client_id)
        if client is None:
            continue  # erased since it was compared: its erasure reaches the copies
        events: list[Event] = (
            [_recorded(c) for c in unheld.get(client.id, [])]
            if difference.replica == "sales.communications"
            else [_updated(client)]
        )
        planned[BY_NAME[difference.replica].update] += [(position, e) for e in events]
    repaired: set[int] = set()
    for listener, items in planned.items():
        answers = bus.publish_to([event for _, event in items], listener=listener, source=SOURCE)
        sent = zip(items, answers, strict=True)
        repaired.update(position for (position, _), answer in sent if answer is not None)
    return len(repaired)


def _unheld_communications(client_ids: list[UUID]) -> dict[UUID, list[Communication]]:
    if not client_ids:
        return {}
    held = set(
        CommunicationReplica.objects.filter(client_id__in=client_ids).values_list("id", flat=True)
    )
    unheld: dict[UUID, list[Communication]] = defaultdict(list)
    for communication in Communication.objects.filter(client_id__in=client_ids).order_by(
        "occurred_at"
    ):
        if communication.id not in held:
            unheld[communication.client_id].append(communication)
    return unheld


def _updated(client: Client) -> ClientUpdated:
    """The whole profile at crm's current version (what crm's own ClientUpdated carries)."""
    return ClientUpdated(
        client_id=str(client.id),
        client_version=client.version,
        email=client.email,
        first_name=client.first_name,
        last_name=client.last_name,
        phone=client.phone,
        company=client.company,
        marketing_consent=client.marketing_consent,
        registered_at=client.registered_at.isoformat(),
    )


def _recorded(communication: Communication) -> CommunicationRecorded:
    return CommunicationRecorded(
        client_id=str(communication.client_id),
        communication_id=str(communication.id),
        channel=communication.channel,
        subject=communication.subject,
        occurred_at=communication.occurred_at.isoformat(),
    )


# --- how many rows each copy holds ------------------------------------------------------------

# Each copy choreography keeps, and the rows of crm it copies.
REPLICA_SOURCES = {
    "sales.customers": ("crm clients", CustomerReplica.objects.all(), Client.objects.all()),
    "sales.communications": (
        "crm communications",
        CommunicationReplica.objects.all(),
        Communication.objects.all(),
    ),
    "correspondence.recipients": ("crm clients", Recipient.objects.all(), Client.objects.all()),
    "marketing.audience": (
        "crm clients who consent to marketing",
        AudienceMember.objects.filter(audience=DEFAULT_AUDIENCE, consent=True),
        Client.objects.filter(marketing_consent=True),
    ),
}


def replica_row_counts() -> dict[str, tuple[str, int, int]]:
    """Per replica: what of crm it copies, its rows and crm's rows (one query of scalar
    subqueries), for the comparison of the modes: the rows choreography duplicates."""
    counted = []
    for name in BY_NAME:
        _, copies, owners = REPLICA_SOURCES[name]
        counted += [copies, owners]
    counts = _count_all(counted)
    return {
        name: (REPLICA_SOURCES[name][0], counts[2 * index], counts[2 * index + 1])
        for index, name in enumerate(BY_NAME)
    }


def _count_all(querysets: list[QuerySet[Any]]) -> list[int]:
    selects, params = [], []
    for queryset in querysets:
        sql, query_params = queryset.order_by().values("pk").query.sql_with_params()
        selects.append(f"(SELECT COUNT(*) FROM ({sql}) counted)")
        params += list(query_params)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(selects)}", params)
        return [int(value) for value in cursor.fetchone()]


def replica_rows_of(client_ids: list[UUID]) -> int:
    """Rows the replicas hold for these clients (what choreography duplicates of them)."""
    return (
        CustomerReplica.objects.filter(client_id__in=client_ids).count()
        + CommunicationReplica.objects.filter(client_id__in=client_ids).count()
        + Recipient.objects.filter(client_id__in=client_ids).count()
    )
