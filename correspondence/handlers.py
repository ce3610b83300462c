"""Choreography: what Correspondence does when other components' events arrive.

It keeps where each client's email goes (its recipients), sends the welcome email and receipts,
and says so.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from correspondence import selectors, services
from correspondence.models import Message
from integration import bus
from integration.events import (
    ClientCreated,
    ClientErased,
    ClientState,
    ClientUpdated,
    PurchaseRecorded,
    ReceiptSent,
    WelcomeEmailSent,
)

COMPONENT = "correspondence"


class RecipientUnknown(Exception):
    """A receipt for a client whose ClientCreated has not arrived yet: retried later."""


def remember_recipient(sender: Any, event: ClientState, **kwargs: Any) -> None:
    services.recipient_apply(
        client_id=UUID(event.client_id),
        client_version=event.client_version,
        email=event.email,
        first_name=event.first_name,
    )


def send_welcome_email(sender: Any, event: ClientCreated, **kwargs: Any) -> None:
    message = services.message_send(
        client_id=UUID(event.client_id),
        recipient=event.email,
        template_key="welcome",
        context={"first_name": event.first_name},
        reference=f"client:{event.client_id}",
    )
    bus.publish(
        WelcomeEmailSent(
            client_id=event.client_id,
            message_id=str(message.id),
            subject=message.subject,
            sent_at=_sent_at(message),
        ),
        source=COMPONENT,
    )


def send_receipt(sender: Any, event: PurchaseRecorded, **kwargs: Any) -> None:
    recipient = selectors.recipient_get(client_id=UUID(event.client_id))
    if recipient is None:
        raise RecipientUnknown(f"no recipient yet for client {event.client_id}")
    message = services.message_send(
        client_id=UUID(event.client_id),
        recipient=recipient.email,
        template_key="receipt",
        context={
            "first_name": recipient.first_name,
            "order_ref": event.order_ref,
            "total": event.total,
            "currency": event.currency,
        },
        reference=f"purchase:{event.purchase_id}",
    )
    bus.publish(
        ReceiptSent(
            client_id=event.client_id,
            order_ref=event.order_ref,
            message_id=str(message.id),
            subject=message.subject,
            sent_at=_sent_at(message),
        ),
        source=COMPONENT,
    )


def erase_client(sender: Any, event: ClientErased, **kwargs: Any) -> None:
    client_id = UUID(event.client_id)
    services.message_erase_client(client_id=client_id)
    services.recipient_erase(client_id=client_id)


def _sent_at(message: Message) -> str:
    return (message.sent_at or message.created_at).isoformat()


def connect() -> None:
    """Called from CorrespondenceConfig.ready(): who correspondence listens to."""
    bus.subscribe(ClientCreated, send_welcome_email, listener="correspondence.send_welcome_email")
    bus.subscribe(ClientCreated, remember_recipient, listener="correspondence.remember_recipient")
    bus.subscribe(ClientUpdated, remember_recipient, listener="correspondence.update_recipient")
    bus.subscribe(PurchaseRecorded, send_receipt, listener="correspondence.send_receipt")
    bus.subscribe(ClientErased, erase_client, listener="correspondence.erase_client")
