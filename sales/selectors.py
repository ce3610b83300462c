"""Every read of Sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import QuerySet

from common import plain_sql
from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase


def account_get(*, client_id: UUID) -> CustomerAccount | None:
    return CustomerAccount.objects.filter(client_id=client_id).first()


def purchase_list(*, client_id: UUID) -> QuerySet[Purchase]:
    return Purchase.objects.filter(client_id=client_id).order_by("-purchased_at", "-recorded_at")


def purchase_get_by_ref(*, client_id: UUID, order_ref: str) -> Purchase | None:
    return Purchase.objects.filter(client_id=client_id, order_ref=order_ref.strip()).first()


@dataclass(frozen=True)
class CustomerCopy:
    """Sales' copy of a client's profile, read for the details answer: what a change brings
    (services.ReplicaProfile), with the copy's version and freshness."""

    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    marketing_consent: bool
    registered_at: datetime
    client_version: int
    as_of: datetime


# The details of every choreographed request read these two in plain SQL (common/plain_sql.py
# says why); the columns are the models'.
_PROFILE_SQL = (
    "SELECT email, first_name, last_name, phone, company, marketing_consent, registered_at,"
    f" client_version, as_of FROM {CustomerReplica._meta.db_table} WHERE client_id = %s"
)
_HISTORY_SQL = (
    "SELECT 'communication', CAST(id AS TEXT), channel, subject, occurred_at, occurred_at"
    f" FROM {CommunicationReplica._meta.db_table} WHERE client_id = %s"
    " UNION ALL"
    " SELECT 'purchase', order_ref, CAST(total AS TEXT), currency, purchased_at, recorded_at"
    f" FROM {Purchase._meta.db_table} WHERE client_id = %s"
    " ORDER BY 5 DESC, 6 DESC"
)


def customer_replica_get(*, client_id: UUID) -> CustomerCopy | None:
    row = plain_sql.fetch_one(
        _PROFILE_SQL, [plain_sql.bound(CustomerReplica, "client_id", client_id)]
    )
    if row is None:
        return None
    email, first, last, phone, company, consent, registered_at, version, as_of = row
    return CustomerCopy(
        email=email,
        first_name=first,
        last_name=last,
        phone=phone,
        company=company,
        marketing_consent=bool(consent),
        registered_at=plain_sql.moment(registered_at),
        client_version=int(version),
        as_of=plain_sql.moment(as_of),
    )


def communication_replica_list(*, client_id: UUID) -> QuerySet[CommunicationReplica]:
    return CommunicationReplica.objects.filter(client_id=client_id).order_by("-occurred_at")


@dataclass(frozen=True)
class CommunicationCopy:
    id: UUID
    channel: str
    subject: str
    occurred_at: datetime


@dataclass(frozen=True)
class PurchaseRow:
    order_ref: str
    total: Decimal
    currency: str
    purchased_at: datetime


def customer_history(*, client_id: UUID) -> tuple[list[CommunicationCopy], list[PurchaseRow]]:
    """A client's replicated communications and its purchases, newest first, in one query (a
    UNION ALL of the two, in the columns they share as text)."""
    rows = plain_sql.fetch_all(
        _HISTORY_SQL,
        [
            plain_sql.bound(CommunicationReplica, "client_id", client_id),
            plain_sql.bound(Purchase, "client_id", client_id),
        ],
    )
    return (
        [
            CommunicationCopy(plain_sql.uuid_of(ref), channel, subject, plain_sql.moment(at))
            for kind, ref, channel, subject, at, _ in rows
            if kind == "communication"
        ],
        [
            PurchaseRow(ref, Decimal(total), currency, plain_sql.moment(at))
            for kind, ref, total, currency, at, _ in rows
            if kind == "purchase"
        ],
    )


# Every orchestrated details request reads a client's purchases: in plain SQL.
_PURCHASES_SQL = (
    f"SELECT order_ref, total, currency, purchased_at FROM {Purchase._meta.db_table}"
    " WHERE client_id = %s ORDER BY purchased_at DESC, recorded_at DESC"
)


def purchase_rows(*, client_id: UUID) -> list[PurchaseRow]:
    """A client's purchases, newest first (as `purchase_list` orders them)."""
    rows = plain_sql.fetch_all(_PURCHASES_SQL, [plain_sql.bound(Purchase, "client_id", client_id)])
    return [
        PurchaseRow(ref, Decimal(str(total)), currency, plain_sql.moment(at))
        for ref, total, currency, at in rows
    ]
