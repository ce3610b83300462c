"""Every write of Sales. Each function is one transaction and raises only `common.errors`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TypedDict
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from common import plain_sql
from common.money import normalise_currency, positive_amount
from common.validation import full_clean_or_raise
from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase


def account_open(*, client_id: UUID) -> CustomerAccount:
    """Open the client's account; opening it again returns the one that exists, as it is. The
    unique index on the client decides (one statement, no savepoint)."""
    account = CustomerAccount(client_id=client_id)
    if plain_sql.insert_unless_taken(account):
        return account
    return CustomerAccount.objects.get(client_id=client_id)


def purchase_record(
    *,
    client_id: UUID,
    order_ref: str,
    total: Decimal,
    currency: str,
    purchased_at: datetime | None = None,
) -> tuple[Purchase, bool]:
    """Record an order once: the same order_ref for the same client returns the first record
    (created False), whatever the replay carries."""
    order_ref = order_ref.strip()
    fields = {
        "total": positive_amount(total),
        "currency": normalise_currency(currency),
        "purchased_at": purchased_at or timezone.now(),
    }
    purchase = Purchase(client_id=client_id, order_ref=order_ref, **fields)
    full_clean_or_raise(purchase)
    if plain_sql.insert_unless_taken(purchase):  # the (client, order_ref) index decides
        return purchase, True
    return Purchase.objects.get(client_id=client_id, order_ref=order_ref), False


def client_sales_erase(*, client_id: UUID) -> None:
    """Forget the client in Sales: the account and every purchase.

    Purchases would normally outlive a person for accounting, but here they carry nothing
    beyond the person's id and amounts, and the brief treats them as personal data: deleted.
    Erasing an unknown client does nothing.
    """
    with transaction.atomic():
        CustomerAccount.objects.filter(client_id=client_id).delete()
        Purchase.objects.filter(client_id=client_id).delete()


# --- replicas (choreography) ------------------------------------------------------------------


class ReplicaProfile(TypedDict):
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    marketing_consent: bool
    registered_at: datetime


def customer_replica_apply(
    *, client_id: UUID, client_version: int, profile: ReplicaProfile, as_of: datetime | None = None
) -> bool:
    """Bring the replica to this version of the client; False when it holds this one or newer."""
    fields = {**profile, "client_version": client_version, "as_of": as_of or timezone.now()}
    return plain_sql.insert_or_advance(CustomerReplica(client_id=client_id, **fields))


def communication_replica_add(
    *, communication_id: UUID, client_id: UUID, channel: str, subject: str, occurred_at: datetime
) -> CommunicationReplica:
    """Copy a communication, or bring the copy already held (a replayed event) to these values."""
    replica = CommunicationReplica(
        id=communication_id,
        client_id=client_id,
        channel=channel,
        subject=subject[:255],
        occurred_at=occurred_at,
    )
    plain_sql.upsert(replica)
    return replica


def replica_erase(*, client_id: UUID) -> None:
    with transaction.atomic():
        CustomerReplica.objects.filter(client_id=client_id).delete()
        CommunicationReplica.objects.filter(client_id=client_id).delete()
