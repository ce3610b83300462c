"""Every write of Customer Relations. Each function is one transaction and raises only
`common.errors` types."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict, Unpack
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from common import plain_sql
from common.emails import normalise_email
from common.errors import Conflict, NotFound, ValidationFailed
from common.money import normalise_currency, positive_amount
from common.validation import full_clean_or_raise
from crm.models import Client, Communication, ErasedClient


class ClientChanges(TypedDict, total=False):
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    marketing_consent: bool


UPDATABLE_FIELDS = frozenset(ClientChanges.__optional_keys__)


def client_create(
    *,
    client_id: UUID,
    email: str,
    first_name: str,
    last_name: str,
    phone: str = "",
    company: str = "",
    marketing_consent: bool = False,
    registered_at: datetime | None = None,
) -> Client:
    """Create the master record. Replaying the same registration (same id and email) returns
    the existing client; an email owned by someone else, or an erased id, is a Conflict."""
    registered_at = registered_at or timezone.now()
    client = Client(
        id=client_id,
        email=normalise_email(email),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        phone=phone.strip(),
        company=company.strip(),
        marketing_consent=marketing_consent,
        registered_at=registered_at,
        updated_at=registered_at,
    )
    full_clean_or_raise(client)
    if ErasedClient.objects.filter(client_id=client.id).exists():
        raise Conflict("This client was erased.", extra={"client_id": str(client.id)})
    # Insert first and let the database's unique indexes decide: no check-then-act, and no
    # savepoint (the insert cannot fail on a conflict).
    if plain_sql.insert_unless_taken(client):
        return client
    return _existing_registration(client)


def _existing_registration(new: Client) -> Client:
    existing = Client.objects.filter(id=new.id).first()
    if existing is not None and existing.email == new.email:
        return existing
    if existing is not None:
        raise Conflict(
            "This client id is registered with another email.",
            extra={"client_id": str(existing.id)},
        )
    raise _email_taken(new.email)


def _email_taken(email: str) -> Conflict:
    owner = Client.objects.filter(email=email).values_list("id", flat=True).first()
    return Conflict(
        "This email belongs to another client.",
        errors={"email": ["A client with this email already exists."]},
        extra={"client_id": str(owner)} if owner else {},
    )


def client_update(*, client_id: UUID, **changes: Unpack[ClientChanges]) -> Client:
    """Change profile fields. The version moves only when a value really changes, so a replayed
    update is a no-op."""
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", errors={name: ["This field cannot be changed."] for name in unknown}
        )
    with transaction.atomic():
        client = _locked_client(client_id)
        changed = _apply_changes(client, changes)
        if not changed:
            return client
        full_clean_or_raise(client)
        _bump_version(client)
        try:
            with transaction.atomic():
                client.save(update_fields=[*changed, "version", "updated_at"])
        except IntegrityError:
            raise _email_taken(client.email) from None
    return client


def _apply_changes(client: Client, changes: ClientChanges) -> list[str]:
    changed = []
    for name, raw in changes.items():
        value = raw.strip() if isinstance(raw, str) else raw
        if name == "email" and isinstance(value, str):
            value = normalise_email(value)
        if getattr(client, name) != value:
            setattr(client, name, value)
            changed.append(name)
    return changed


def client_add_purchase_value(*, client_id: UUID, total: Decimal, currency: str) -> Client:
    """Add one purchase to the client's lifetime value in its currency.

    Not idempotent by itself: the caller's processed-message record makes it exactly once.
    """
    amount = positive_amount(total)
    code = normalise_currency(currency)
    with transaction.atomic(savepoint=False):  # as in communication_record: no savepoint
        client = _locked_client_if_known(client_id)
        if client is not None:
            previous = Decimal(client.lifetime_values.get(code, "0"))
            client.lifetime_values = {**client.lifetime_values, code: str(previous + amount)}
            client.purchase_count += 1
            _bump_version(client)
            fields = ["lifetime_values", "purchase_count", "version", "updated_at"]
            plain_sql.update(client, fields)
            return client
    raise _not_found(client_id)


def communication_record(
    *,
    client_id: UUID,
    channel: str,
    subject: str,
    body: str = "",
    occurred_at: datetime | None = None,
    reference: str = "",
) -> Communication:
    """Add a contact to the client's history; a non-empty reference makes it idempotent."""
    reference = reference.strip()
    fields = {
        "channel": channel,
        "subject": subject.strip(),
        "body": body,
        "occurred_at": occurred_at or timezone.now(),
    }
    draft = Communication(client_id=client_id, reference=reference, **fields)
    full_clean_or_raise(draft, exclude=["client"])  # the client is checked under its lock below
    # No savepoint: an unknown client is refused after the block, which leaves a caller's
    # transaction usable; nothing inside raises but a database error.
    with transaction.atomic(savepoint=False):
        client = _locked_client_if_known(client_id)
        if client is not None:
            communication = Communication(client=client, reference=reference, **fields)
            if reference and not plain_sql.insert_unless_taken(communication):
                # Recorded before: the (client, reference) index decided.
                return Communication.objects.get(client=client, reference=reference)
            if not reference:
                communication.save(force_insert=True)
            _bump_version(client)
            plain_sql.update(client, ["version", "updated_at"])
            return communication
    raise _not_found(client_id)


def client_erase(*, client_id: UUID) -> None:
    """Delete the client with its communications and leave a tombstone. Erasing an erased
    client does nothing; an id crm never knew is NotFound."""
    with transaction.atomic():
        deleted, _ = Client.objects.filter(id=client_id).delete()
        if not deleted and not ErasedClient.objects.filter(client_id=client_id).exists():
            raise NotFound("Client not found.", extra={"client_id": str(client_id)})
        ErasedClient.objects.get_or_create(client_id=client_id)


def _locked_client(client_id: UUID) -> Client:
    client = _locked_client_if_known(client_id)
    if client is None:
        raise _not_found(client_id)
    return client


def _locked_client_if_known(client_id: UUID) -> Client | None:
    # No lock on SQLite, whose IMMEDIATE transactions serialise writers.
    try:
        return plain_sql.locked(Client, client_id)
    except Client.DoesNotExist:
        return None


def _not_found(client_id: UUID) -> NotFound:
    return NotFound("Client not found.", extra={"client_id": str(client_id)})


def _bump_version(client: Client) -> None:
    client.version += 1
    client.updated_at = timezone.now()
