"""Every read of Sales."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

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
