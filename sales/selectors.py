"""Every read of Sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Cast

from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase


def account_get(*, client_id: UUID) -> CustomerAccount | None:
    return CustomerAccount.objects.filter(client_id=client_id).first()


def purchase_list(*, client_id: UUID) -> QuerySet[Purchase]:
    return Purchase.objects.filter(client_id=client_id).order_by("-purchased_at", "-recorded_at")


def purchase_get_by_ref(*, client_id: UUID, order_ref: str) -> Purchase | None:
    return Purchase.objects.filter(client_id=client_id, order_ref=order_ref.strip()).first()


def customer_replica_get(*, client_id: UUID) -> CustomerReplica | None:
    return CustomerReplica.objects.filter(client_id=client_id).first()


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
    columns = ("row_kind", "row_ref", "row_a", "row_b", "row_at", "row_tie")
    communications = (
        CommunicationReplica.objects.filter(client_id=client_id)
        .annotate(
            row_kind=Value("communication", output_field=CharField()),
            row_ref=Cast("id", CharField()),
            row_a=F("channel"),
            row_b=F("subject"),
            row_at=F("occurred_at"),
            row_tie=F("occurred_at"),
        )
        .order_by()  # the union is ordered as a whole
        .values_list(*columns)
    )
    purchases = (
        Purchase.objects.filter(client_id=client_id)
        .annotate(
            row_kind=Value("purchase", output_field=CharField()),
            row_ref=F("order_ref"),
            row_a=Cast("total", CharField()),
            row_b=F("currency"),
            row_at=F("purchased_at"),
            row_tie=F("recorded_at"),
        )
        .order_by()
        .values_list(*columns)
    )
    rows = list(communications.union(purchases, all=True).order_by("-row_at", "-row_tie"))
    return (
        [
            CommunicationCopy(UUID(ref), channel, subject, at)
            for kind, ref, channel, subject, at, _ in rows
            if kind == "communication"
        ],
        [
            PurchaseRow(ref, Decimal(total), currency, at)
            for kind, ref, total, currency, at, _ in rows
            if kind == "purchase"
        ],
    )
