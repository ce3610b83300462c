"""Choreography: what Customer Relations does when other components' events arrive.

crm owns the client: it creates and changes the master record when asked, records the emails
others sent, and tells everyone what changed. Each handler calls crm's own services only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils.dateparse import parse_datetime

from crm import services
from crm.models import Client, Communication
from integration import bus
from integration.events import (
    ClientCreated,
    ClientErased,
    ClientErasureRequested,
    ClientRegistered,
    ClientUpdated,
    ClientUpdateRequested,
    CommunicationRecorded,
    PurchaseRecorded,
    ReceiptSent,
    WelcomeEmailSent,
)

COMPONENT = "crm"


def create_client(sender: Any, event: ClientRegistered, **kwargs: Any) -> None:
    client = services.client_create(
        client_id=UUID(event.client_id),
        email=event.email,
        first_name=event.first_name,
        last_name=event.last_name,
        phone=event.phone,
        company=event.company,
        marketing_consent=event.marketing_consent,
    )
    bus.publish(ClientCreated(**_state(client)), source=COMPONENT)


def update_client(sender: Any, event: ClientUpdateRequested, **kwargs: Any) -> None:
    client = services.client_update(client_id=UUID(event.client_id), **event.changes)
    bus.publish(ClientUpdated(**_state(client)), source=COMPONENT)


def add_purchase_value(sender: Any, event: PurchaseRecorded, **kwargs: Any) -> None:
    services.client_add_purchase_value(
        client_id=UUID(event.client_id), total=Decimal(event.total), currency=event.currency
    )


def record_welcome_email(sender: Any, event: WelcomeEmailSent, **kwargs: Any) -> None:
    _record_email(event.client_id, event.message_id, event.subject, event.sent_at)


def record_receipt(sender: Any, event: ReceiptSent, **kwargs: Any) -> None:
    _record_email(event.client_id, event.message_id, event.subject, event.sent_at)


def erase_client(sender: Any, event: ClientErasureRequested, **kwargs: Any) -> None:
    services.client_erase(client_id=UUID(event.client_id))
    bus.publish(ClientErased(client_id=event.client_id), source=COMPONENT)


def _record_email(client_id: str, message_id: str, subject: str, sent_at: str) -> None:
    communication = services.communication_record(
        client_id=UUID(client_id),
        channel="email",
        subject=subject,
        occurred_at=parse_datetime(sent_at),
        reference=message_id,
    )
    publish_communication(communication)


def publish_communication(communication: Communication) -> None:
    bus.publish(
        CommunicationRecorded(
            client_id=str(communication.client_id),
            communication_id=str(communication.id),
            channel=communication.channel,
            subject=communication.subject,
            occurred_at=communication.occurred_at.isoformat(),
        ),
        source=COMPONENT,
    )


def _state(client: Client) -> dict[str, Any]:
    """What ClientCreated and ClientUpdated carry: the whole profile at its version."""
    return {
        "client_id": str(client.id),
        "client_version": client.version,
        "registered_at": client.registered_at.isoformat(),
        "email": client.email,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "phone": client.phone,
        "company": client.company,
        "marketing_consent": client.marketing_consent,
    }


def connect() -> None:
    """Called from CrmConfig.ready(): who crm listens to."""
    bus.subscribe(ClientRegistered, create_client, listener="crm.create_client")
    bus.subscribe(ClientUpdateRequested, update_client, listener="crm.update_client")
    bus.subscribe(PurchaseRecorded, add_purchase_value, listener="crm.add_purchase_value")
    bus.subscribe(WelcomeEmailSent, record_welcome_email, listener="crm.record_welcome_email")
    bus.subscribe(ReceiptSent, record_receipt, listener="crm.record_receipt")
    bus.subscribe(ClientErasureRequested, erase_client, listener="crm.erase_client")
