"""The mode-agnostic entry points the shop API and the staff pages call.

Each start of a process happens in one transaction: the gateway's registry (identities are handed
out at the door), the process row, and its first message (a command in orchestration, an event in
choreography). The mode is read once, here, and the process keeps it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from common import correlation
from common.emails import normalise_email
from common.errors import Conflict, NotFound, ValidationFailed
from crm import handlers as crm_handlers
from crm import selectors as crm_selectors
from crm import services as crm_services
from integration import lifecycle, modes
from integration.models import (
    ApiToken,
    ErasedClientId,
    IntegrationMode,
    OrderKey,
    Process,
    ProcessKind,
    RegisteredEmail,
)
from integration.orchestrator import engine

PROFILE_LIMITS = {"first_name": 150, "last_name": 150, "phone": 40, "company": 200, "email": 254}
UPDATABLE = ("first_name", "last_name", "phone", "company", "marketing_consent", "email")


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

# Mode → how a process begins (the choreography module adds itself; see integration/apps.py).
STARTERS: dict[str, Callable[[Process], None]] = {
    IntegrationMode.ORCHESTRATION: engine.process_begin,
}


def _start(*, kind: str, client_id: UUID, data: dict[str, Any], initiator: Initiator) -> Process:
    """Create a process in the current mode and send its first message (in the caller's
    transaction; published after commit)."""
    mode = modes.mode_get()
    process = Process.objects.create(
        kind=kind,
        mode=mode,
        client_id=client_id,
        input=data,
        initiator_token=initiator.token,
        initiator_user=initiator.user if initiator.user is not None else None,
    )
    with correlation.bound(process.id):
        lifecycle.process_started(process=process)
        STARTERS[mode](process)
    return process


# --- validation -------------------------------------------------------------------------------


def _clean_profile(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for field, limit in PROFILE_LIMITS.items():
        if field not in data:
            if not partial and field in ("email", "first_name", "last_name"):
                errors[field] = ["This field is required."]
            continue
        value = data[field]
        value = "" if value is None and field in ("phone", "company") else value
        if not isinstance(value, str):
            errors[field] = ["Must be a string."]
            continue
        value = value.strip()
        if "\x00" in value:
            errors[field] = ["Null characters are not allowed."]
        elif field in ("email", "first_name", "last_name") and not value:
            errors[field] = ["This field may not be blank."]
        elif len(value) > limit:
            errors[field] = [f"At most {limit} characters."]
        else:
            clean[field] = value
    if "email" in clean:
        clean["email"] = normalise_email(clean["email"])
        try:
            validate_email(clean["email"])
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]
    if "marketing_consent" in data:
        if isinstance(data["marketing_consent"], bool):
            clean["marketing_consent"] = data["marketing_consent"]
        else:
            errors["marketing_consent"] = ["Must be true or false."]
    elif not partial:
        clean["marketing_consent"] = False
    if errors:
        raise ValidationFailed("The request has invalid fields.", errors=errors)
    return clean


def _clean_order(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    order_ref = data.get("order_ref")
    if not isinstance(order_ref, str) or not order_ref.strip() or len(order_ref.strip()) > 64:
        errors["order_ref"] = ["A non-empty string of at most 64 characters is required."]
    elif "\x00" in order_ref:
        errors["order_ref"] = ["Null characters are not allowed."]
    total = data.get("total")
    amount: Decimal | None = None
    try:
        amount = Decimal(str(total)) if isinstance(total, (str, int)) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        errors["total"] = ["A positive decimal string with at most 2 decimals is required."]
    elif amount >= Decimal("10000000000"):
        errors["total"] = ["Too large."]
    currency = data.get("currency")
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isalpha()
        or not currency.isascii()
    ):
        errors["currency"] = ["An ISO 4217 code of three letters is required."]
    purchased_at = data.get("purchased_at")
    if purchased_at is not None and not isinstance(purchased_at, datetime):
        errors["purchased_at"] = ["An ISO 8601 timestamp with a time zone is required."]
    elif isinstance(purchased_at, datetime) and timezone.is_naive(purchased_at):
        errors["purchased_at"] = ["The timestamp needs a time zone."]
    if errors:
        raise ValidationFailed("The request has invalid fields.", errors=errors)
    assert amount is not None and isinstance(order_ref, str) and isinstance(currency, str)
    return {
        "order_ref": order_ref.strip(),
        "total": f"{amount:.2f}",
        "currency": currency.upper(),
        "purchased_at": purchased_at.isoformat() if isinstance(purchased_at, datetime) else None,
    }


# --- the registry ---------------------------------------------------------------------------------


def _owner_of(email: str) -> UUID | None:
    registered = RegisteredEmail.objects.filter(email=email).values_list("client_id", flat=True)
    if registered:
        return registered[0]
    client = crm_selectors.client_get_by_email(email=email)
    return client.id if client is not None else None


def _email_taken(email: str, client_id: UUID) -> Conflict:
    return Conflict(
        "This email already belongs to a client.",
        errors={"email": ["Already registered."]},
        extra={"client_id": str(client_id)},
    )


def registry_add(*, client_id: UUID, email: str, process: Process | None = None) -> None:
    """Claim an email for a client (its own savepoint: a race answers 409, not a 500)."""
    try:
        with transaction.atomic():
            RegisteredEmail.objects.create(email=email, client_id=client_id, process=process)
    except IntegrityError:
        owner = _owner_of(email)
        raise _email_taken(email, owner or client_id) from None


def client_known(client_id: UUID) -> bool:
    """A client this gateway handed out an id to, and not erased (nor being erased)."""
    return (
        RegisteredEmail.objects.filter(client_id=client_id).exists()
        and not ErasedClientId.objects.filter(client_id=client_id).exists()
    )


def _require_known(client_id: UUID) -> None:
    if not client_known(client_id):
        raise NotFound("No client with this id.")


# --- processes --------------------------------------------------------------------------------


@transaction.atomic
def client_register(*, data: dict[str, Any], initiator: Initiator) -> Process:
    profile = _clean_profile(data, partial=False)
    owner = _owner_of(profile["email"])
    if owner is not None:
        raise _email_taken(profile["email"], owner)
    client_id = uuid.uuid4()
    process = _start(
        kind=ProcessKind.CLIENT_REGISTRATION, client_id=client_id, data=profile, initiator=initiator
    )
    registry_add(client_id=client_id, email=profile["email"], process=process)
    return process


@transaction.atomic
def client_update(*, client_id: UUID, data: dict[str, Any], initiator: Initiator) -> Process:
    _require_known(client_id)
    unknown = sorted(set(data) - set(UPDATABLE))
    if unknown:
        raise ValidationFailed(
            "The request has fields that cannot be changed.",
            errors={field: ["This field cannot be changed."] for field in unknown},
        )
    changes = _clean_profile(data, partial=True)
    if not changes:
        raise ValidationFailed(
            "Nothing to change.", errors={"non_field_errors": ["Send at least one field."]}
        )
    if "email" in changes:
        owner = _owner_of(changes["email"])
        if owner is not None and owner != client_id:
            raise _email_taken(changes["email"], owner)
        RegisteredEmail.objects.filter(client_id=client_id).update(email=changes["email"])
    return _start(
        kind=ProcessKind.CLIENT_UPDATE, client_id=client_id, data=changes, initiator=initiator
    )


@transaction.atomic
def purchase_record(
    *, client_id: UUID, data: dict[str, Any], initiator: Initiator
) -> tuple[Process, bool]:
    """Start a purchase; (the original process, False) when the order_ref is known already."""
    _require_known(client_id)
    order = _clean_order(data)
    existing = OrderKey.objects.filter(client_id=client_id, order_ref=order["order_ref"]).first()
    if existing is not None:
        return existing.process, False
    process = _start(
        kind=ProcessKind.PURCHASE, client_id=client_id, data=order, initiator=initiator
    )
    try:
        with transaction.atomic():
            OrderKey.objects.create(
                client_id=client_id, order_ref=order["order_ref"], process=process
            )
    except IntegrityError:
        # Another request recorded this order meanwhile: answer with its process, and undo ours
        # (read the winner first: no query may run once the transaction is marked for rollback).
        winner = OrderKey.objects.select_related("process").get(
            client_id=client_id, order_ref=order["order_ref"]
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


# Mode → how details are read (the choreography module adds the sales replica).
DETAIL_READERS: dict[str, Callable[[UUID], dict[str, Any]]] = {}


def client_details(*, client_id: UUID) -> dict[str, Any]:
    """Profile, communications and purchases, one shape in both modes (see shop-api.md)."""
    _require_known(client_id)
    mode = modes.mode_get()
    return DETAIL_READERS[mode](client_id)


# --- staff writes that are not processes ----------------------------------------------------------

CHANNELS = ("email", "phone", "note")


@transaction.atomic
def communication_add(
    *, client_id: UUID, channel: str, subject: str, body: str, initiator: Initiator
) -> None:
    """A person records a call, a note or an email with a client. crm writes it at once; in
    choreography it also tells the components that keep a copy."""
    _require_known(client_id)
    errors: dict[str, list[str]] = {}
    if channel not in CHANNELS:
        errors["channel"] = ["Choose email, phone or note."]
    if not subject.strip() or len(subject) > 200 or "\x00" in subject:
        errors["subject"] = ["A subject of 1 to 200 characters is required."]
    if "\x00" in body:
        errors["body"] = ["Null characters are not allowed."]
    if errors:
        raise ValidationFailed("The communication has invalid fields.", errors=errors)
    communication = crm_services.communication_record(
        client_id=client_id, channel=channel, subject=subject.strip(), body=body
    )
    if modes.mode_get() == IntegrationMode.CHOREOGRAPHY:
        crm_handlers.publish_communication(communication)
