"""The mode-agnostic entry points the shop API and the staff pages call.

Each start of a process happens in one transaction: the gateway's registry (identities are handed
out at the door), the process row, and its first message (a command in orchestration, an event in
choreography). The mode is read once, here, and the process keeps it.

The faces check the shape of what they receive (serializers, forms) against the limits below; the
gateway takes typed keyword arguments and keeps the business rules: the email normalised, the
registry, uniqueness, what may be changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from common import correlation, plain_sql
from common.emails import normalise_email
from common.errors import Conflict, NotFound, ValidationFailed
from crm import selectors as crm_selectors
from crm import services as crm_services
from crm.models import Client, Communication
from integration.choreography import details as replica_details
from integration.choreography import replicas
from integration.choreography import start as choreography_start
from integration.core import lifecycle, modes
from integration.core.details import ReplicaBehind
from integration.core.trace import process_insert, trace_batch
from integration.models import (
    ApiToken,
    ErasedClientId,
    IntegrationMode,
    OrderKey,
    Process,
    ProcessKind,
    RegisteredEmail,
)
from integration.orchestrator import details as orchestrated_details
from integration.orchestrator import engine

# A profile field's length, as crm stores it: what the serializers and forms check against.
PROFILE_FIELDS = ("email", "first_name", "last_name", "phone", "company")
PROFILE_LIMITS: dict[str, int] = {
    field.name: int(field.max_length or 0)
    for field in Client._meta.concrete_fields
    if field.name in PROFILE_FIELDS
}
ORDER_REF_LIMIT = next(
    int(field.max_length or 0)
    for field in OrderKey._meta.concrete_fields
    if field.name == "order_ref"
)
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"  # ISO 4217: three letters, upper-cased here
CHANNELS = tuple(value for value, _ in Communication._meta.get_field("channel").choices or ())


@dataclass(frozen=True)
class Initiator:
    """Who started a process: a shop token or a member of staff."""

    token: ApiToken | None = None
    user: Any = None

    @property
    def label(self) -> str:
        if self.token is not None:
            return f"token:{self.token.name}"
        return f"user:{self.user.get_username()}" if self.user is not None else "system"


SYSTEM = Initiator()

# How a process begins and how details are read, in each mode.
STARTERS: dict[str, Callable[[Process], None]] = {
    IntegrationMode.ORCHESTRATION: engine.process_begin,
    IntegrationMode.CHOREOGRAPHY: choreography_start.process_begin,
}
# What follows a communication a person records with crm directly, in each mode.
COMMUNICATION_SHARERS: dict[str, Callable[[Communication], None]] = {
    IntegrationMode.ORCHESTRATION: lambda communication: None,  # crm holds the only copy
    IntegrationMode.CHOREOGRAPHY: replicas.communication_share,
}
DETAIL_READERS: dict[str, Callable[[UUID, int | None], dict[str, Any]]] = {
    IntegrationMode.ORCHESTRATION: orchestrated_details.details_orchestrated,
    IntegrationMode.CHOREOGRAPHY: replica_details.details_choreographed,
}


def _start(*, kind: str, client_id: UUID, data: dict[str, Any], initiator: Initiator) -> Process:
    """Create a process in the current mode and send its first message (in the caller's
    transaction; published after commit)."""
    mode = modes.mode_get()
    process = Process(
        kind=kind,
        mode=mode,
        client_id=client_id,
        input=data,
        initiator_token=initiator.token,
        initiator_user=initiator.user if initiator.user is not None else None,
    )
    with correlation.bound(process.id), trace_batch():
        process_insert(process)  # written when the batch ends, numbered with its first entries
        lifecycle.process_started(process=process)
        STARTERS[mode](process)
    return process


# --- the registry ---------------------------------------------------------------------------------


def _owner_of(email: str) -> UUID | None:
    registered = RegisteredEmail.objects.filter(email=email).values_list("client_id", flat=True)
    if registered:
        return registered[0]
    return crm_selectors.client_id_by_email(email=email)


def _email_taken(email: str, client_id: UUID) -> Conflict:
    return Conflict(
        "This email already belongs to a client.",
        errors={"email": ["Already registered."]},
        extra={"client_id": str(client_id)},
    )


def registry_add(
    *, client_id: UUID, email: str, process: Process | None = None, unless_crm_holds: bool = False
) -> None:
    """Claim an email for a client. One INSERT … ON CONFLICT DO NOTHING decides (a concurrent
    claim of the same email waits on the unique index for the first one's transaction): taken,
    it is a 409 naming the owner, and the caller's transaction undoes what it wrote.
    `unless_crm_holds`: also refused while crm holds the address under another client (until an
    email change reaches it), asked in the same statement."""
    if not _registry_insert(
        client_id=client_id, email=email, process=process, unless_crm_holds=unless_crm_holds
    ):
        raise _email_taken(email, _owner_of(email) or client_id)


def _registry_insert(
    *, client_id: UUID, email: str, process: Process | None, unless_crm_holds: bool
) -> bool:
    meta = RegisteredEmail._meta
    fields = {field.attname: field for field in meta.concrete_fields}
    values = [
        email,
        fields["client_id"].get_db_prep_value(client_id, connection),
        fields["process_id"].get_db_prep_value(process.pk if process else None, connection),
        fields["registered_at"].get_db_prep_value(timezone.now(), connection),
    ]
    # A SELECT with a WHERE clause: SQLite reads an upsert's SELECT without one ambiguously.
    condition = f"NOT {crm_selectors.EMAIL_HELD_SQL}" if unless_crm_holds else "1 = 1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} (email, client_id, process_id, registered_at) "
            f"SELECT %s, %s, %s, %s WHERE {condition} ON CONFLICT DO NOTHING RETURNING 1",
            [*values, email] if unless_crm_holds else values,
        )
        return cursor.fetchone() is not None


# Asked by every details request: in plain SQL (common/plain_sql.py says why).
_KNOWN_SQL = (
    f"SELECT 1 FROM {RegisteredEmail._meta.db_table} WHERE client_id = %s AND NOT EXISTS"
    f" (SELECT 1 FROM {ErasedClientId._meta.db_table} WHERE client_id = %s) LIMIT 1"
)


def client_known(client_id: UUID) -> bool:
    """A client this gateway handed out an id to, and not erased (nor being erased): one
    query."""
    params = [
        plain_sql.bound(RegisteredEmail, "client_id", client_id),
        plain_sql.bound(ErasedClientId, "client_id", client_id),
    ]
    return plain_sql.fetch_one(_KNOWN_SQL, params) is not None


def _require_known(client_id: UUID) -> None:
    if not client_known(client_id):
        raise NotFound("No client with this id.")


# --- processes --------------------------------------------------------------------------------


@transaction.atomic
def client_register(
    *,
    email: str,
    first_name: str,
    last_name: str,
    phone: str = "",
    company: str = "",
    marketing_consent: bool = False,
    initiator: Initiator,
) -> Process:
    email = normalise_email(email)
    profile = {
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "company": company,
        "marketing_consent": marketing_consent,
    }
    client_id = uuid.uuid4()
    process = _start(
        kind=ProcessKind.CLIENT_REGISTRATION, client_id=client_id, data=profile, initiator=initiator
    )
    # Claimed after the process is written, where the registry's unique index decides; crm may
    # still hold the address under another client until an email change reaches it. Refused,
    # the transaction undoes the process.
    registry_add(client_id=client_id, email=email, process=process, unless_crm_holds=True)
    return process


@transaction.atomic
def client_update(
    *,
    client_id: UUID,
    initiator: Initiator,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    company: str | None = None,
    marketing_consent: bool | None = None,
) -> Process:
    """Change what is given (None: unchanged)."""
    _require_known(client_id)
    given = {
        "email": normalise_email(email) if email is not None else None,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "company": company,
        "marketing_consent": marketing_consent,
    }
    changes = {field: value for field, value in given.items() if value is not None}
    if not changes:
        raise ValidationFailed(
            "Nothing to change.", errors={"non_field_errors": ["Send at least one field."]}
        )
    if email is not None:
        _registry_move(client_id=client_id, email=str(changes["email"]))
    return _start(
        kind=ProcessKind.CLIENT_UPDATE, client_id=client_id, data=changes, initiator=initiator
    )


def _registry_move(*, client_id: UUID, email: str) -> None:
    """The client's registry entry takes its new email; taken by another client: 409 naming it
    (a concurrent change to the same email loses at the unique index, never with a 500)."""
    owner = _owner_of(email)
    if owner is not None and owner != client_id:
        raise _email_taken(email, owner)
    try:
        with transaction.atomic():
            RegisteredEmail.objects.filter(client_id=client_id).update(email=email)
    except IntegrityError:
        raise _email_taken(email, _owner_of(email) or client_id) from None


@transaction.atomic
def purchase_record(
    *,
    client_id: UUID,
    order_ref: str,
    total: Decimal,
    currency: str,
    purchased_at: datetime | None = None,
    initiator: Initiator,
) -> tuple[Process, bool]:
    """Start a purchase; (the original process, False) when the order_ref is known already."""
    _require_known(client_id)
    order = {
        "order_ref": order_ref,
        "total": f"{Decimal(total):.2f}",
        "currency": currency.upper(),
        "purchased_at": purchased_at.isoformat() if purchased_at else None,
    }
    existing = OrderKey.objects.filter(client_id=client_id, order_ref=order_ref).first()
    if existing is not None:
        return existing.process, False
    process = _start(
        kind=ProcessKind.PURCHASE, client_id=client_id, data=order, initiator=initiator
    )
    try:
        with transaction.atomic():
            OrderKey.objects.create(client_id=client_id, order_ref=order_ref, process=process)
    except IntegrityError:
        # Another request recorded this order meanwhile: answer with its process, and undo ours
        # (read the winner first: no query may run once the transaction is marked for rollback).
        winner = OrderKey.objects.select_related("process").get(
            client_id=client_id, order_ref=order_ref
        )
        transaction.set_rollback(True)
        return winner.process, False
    return process, True


@transaction.atomic
def client_erase(*, client_id: UUID, initiator: Initiator) -> Process:
    """Start erasing a client. From now on the client answers 404; its email is free again once
    the erasure completes (the last step removes it from the registry)."""
    if not client_known(client_id):
        raise NotFound("No client with this id.")
    ErasedClientId.objects.create(client_id=client_id)
    return _start(
        kind=ProcessKind.CLIENT_ERASURE, client_id=client_id, data={}, initiator=initiator
    )


def process_get(*, process_id: UUID, token: ApiToken | None = None) -> Process:
    """A process with its trace; a shop token sees only the processes it started."""
    query = Process.objects.filter(pk=process_id)
    if token is not None:
        query = query.filter(initiator_token=token)
    process = query.prefetch_related("trace").first()
    if process is None:
        raise NotFound("No process with this id.")
    return process


# --- reads ------------------------------------------------------------------------------------


def clients_search(*, query: str) -> QuerySet[Client]:
    """The staff search: crm's clients matching every term (name, email or company)."""
    return crm_selectors.client_search(query=query)


def client_record(*, client_id: UUID) -> Client:
    """crm's own row of a known client (not the mode's details): what an edit starts from."""
    _require_known(client_id)
    return crm_selectors.client_get(client_id=client_id)


def client_find_by_email(*, email: str) -> list[dict[str, Any]]:
    if "\x00" in email:
        return []  # no address holds one (and PostgreSQL refuses it in a query)
    client = crm_selectors.client_get_by_email(email=normalise_email(email))
    if client is None or not client_known(client.id):
        return []
    return [
        {
            "id": client.id,
            "email": client.email,
            "first_name": client.first_name,
            "last_name": client.last_name,
        }
    ]


def client_details(*, client_id: UUID, min_version: int | None = None) -> dict[str, Any]:
    """Profile, communications and purchases, one shape in both modes (see shop-api.md); asked
    for a version, at that version or newer (read your own writes), or Unavailable."""
    _require_known(client_id)
    mode = modes.mode_get()
    try:
        return DETAIL_READERS[mode](client_id, min_version)
    except ReplicaBehind:
        return orchestrated_details.details_from_crm(client_id, min_version, mode=mode)


# --- staff writes that are not processes ----------------------------------------------------------


@transaction.atomic
def communication_add(
    *, client_id: UUID, channel: str, subject: str, body: str, initiator: Initiator
) -> None:
    """A person records a call, a note or an email with a client. crm writes it at once; in
    choreography it also tells the components that keep a copy."""
    _require_known(client_id)
    communication = crm_services.communication_record(
        client_id=client_id, channel=channel, subject=subject, body=body
    )
    COMMUNICATION_SHARERS[modes.mode_get()](communication)
