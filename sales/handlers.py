"""Choreography: what Sales does when other components' events arrive.

Sales records purchases, and keeps a local replica of each client's profile and communications so
that it can answer client details on its own, even while crm is down.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integration import bus
from integration.events import (
    ClientCreated,
    ClientErased,
    ClientState,
    ClientUpdated,
    CommunicationRecorded,
    PurchaseRecorded,
    PurchaseRequested,
)
from sales import services

COMPONENT = "sales"


def replicate_client(sender: Any, event: ClientState, **kwargs: Any) -> None:
    client_id = UUID(event.client_id)
    services.customer_replica_apply(
        client_id=client_id,
        client_version=event.client_version,
        profile={
            "email": event.email,
            "first_name": event.first_name,
            "last_name": event.last_name,
            "phone": event.phone,
            "company": event.company,
            "marketing_consent": event.marketing_consent,
            "registered_at": parse_datetime(event.registered_at) or timezone.now(),
        },
    )
    if isinstance(event, ClientCreated):
        services.account_open(client_id=client_id)


def replicate_communication(sender: Any, event: CommunicationRecorded, **kwargs: Any) -> None:
    services.communication_replica_add(
        communication_id=UUID(event.communication_id),
        client_id=UUID(event.client_id),
        channel=event.channel,
        subject=event.subject,
        occurred_at=parse_datetime(event.occurred_at) or timezone.now(),
    )


def record_purchase(sender: Any, event: PurchaseRequested, **kwargs: Any) -> None:
    purchase, created = services.purchase_record(
        client_id=UUID(event.client_id),
        order_ref=event.order_ref,
        total=Decimal(event.total),
        currency=event.currency,
        purchased_at=parse_datetime(event.purchased_at) if event.purchased_at else None,
    )
    if not created:
        return  # recorded before: the others heard of it then
    bus.publish(
        PurchaseRecorded(
            client_id=event.client_id,
            purchase_id=str(purchase.id),
            order_ref=purchase.order_ref,
            total=f"{purchase.total:.2f}",
            currency=purchase.currency,
            purchased_at=purchase.purchased_at.isoformat(),
        ),
        source=COMPONENT,
    )


def erase_client(sender: Any, event: ClientErased, **kwargs: Any) -> None:
    client_id = UUID(event.client_id)
    services.replica_erase(client_id=client_id)
    services.client_sales_erase(client_id=client_id)


def connect() -> None:
    """Called from SalesConfig.ready(): who sales listens to."""
    bus.subscribe(ClientCreated, replicate_client, listener="sales.replicate_client")
    bus.subscribe(ClientUpdated, replicate_client, listener="sales.replicate_client_update")
    bus.subscribe(
        CommunicationRecorded, replicate_communication, listener="sales.replicate_communication"
    )
    bus.subscribe(PurchaseRequested, record_purchase, listener="sales.record_purchase")
    bus.subscribe(ClientErased, erase_client, listener="sales.erase_client")
