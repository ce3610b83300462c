"""Choreography: what Correspondence does when other components' events arrive.

It keeps where each client's email goes (its recipients), sends the welcome email and receipts,
and says so. A send is queued in the delivery's transaction and goes out after commit; the
transaction that records it sent publishes WelcomeEmailSent / ReceiptSent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from correspondence import selectors, services
from correspondence.models import Message, MessageStatus
from integration import bus
from integration.events import (
    ClientCreated,
    ClientErased,
    ClientState,
    ClientUpdated,
    Event,
    PurchaseRecorded,
    ReceiptSent,
    WelcomeEmailSent,
)

SEND_EMAIL = "send_email"  # the send's own entry in a process's trace


class RecipientUnknown(Exception):
    """A receipt for a client whose ClientCreated has not arrived yet: retried later."""


def remember_recipient(sender: Any, event: ClientState, **kwargs: Any) -> None:
    services.recipient_apply(
        client_id=UUID(event.client_id),
        client_version=event.client_version,
        email=event.email,
        first_name=event.first_name,
    )


def send_welcome_email(sender: Any, event: ClientCreated, **kwargs: Any) -> services.Queued:
    """Queue the welcome email in the delivery's transaction; it is sent after commit."""
    return services.message_queue_claimed(
        client_id=UUID(event.client_id),
        recipient=event.email,
        template_key="welcome",
        context={"first_name": event.first_name},
        reference=f"client:{event.client_id}",
    )


def deliver_welcome_email(queued: services.Queued, settle: bus.Settle) -> None:
    _deliver(
        queued,
        settle,
        lambda message: WelcomeEmailSent(
            client_id=str(message.client_id),
            message_id=str(message.id),
            subject=message.subject,
            sent_at=_sent_at(message),
        ),
    )


def send_receipt(
    sender: Any, event: PurchaseRecorded, **kwargs: Any
) -> tuple[services.Queued, str]:
    """Queue the receipt in the delivery's transaction; it is sent after commit."""
    recipient = selectors.recipient_get(client_id=UUID(event.client_id))
    if recipient is None:
        raise RecipientUnknown(f"no recipient yet for client {event.client_id}")
    queued = services.message_queue_claimed(
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
    return queued, event.order_ref


def deliver_receipt(intent: tuple[services.Queued, str], settle: bus.Settle) -> None:
    queued, order_ref = intent
    _deliver(
        queued,
        settle,
        lambda message: ReceiptSent(
            client_id=str(message.client_id),
            order_ref=order_ref,
            message_id=str(message.id),
            subject=message.subject,
            sent_at=_sent_at(message),
        ),
    )


def _deliver(
    queued: services.Queued, settle: bus.Settle, announce: Callable[[Message], Event]
) -> None:
    """After the delivery's commit: send the message. That it was sent is published in the
    transaction that records it; a message cancelled by an erasure announces nothing."""

    def settled(message: Message) -> None:
        sent = message.status == MessageStatus.SENT
        settle(message.status, *([announce(message)] if sent else []))

    services.message_deliver(
        message_id=queued.message.id,
        on_settled=settled,
        claimed=queued.claimed,
    )


def erase_client(sender: Any, event: ClientErased, **kwargs: Any) -> None:
    client_id = UUID(event.client_id)
    services.message_erase_client(client_id=client_id)
    services.recipient_erase(client_id=client_id)


def _sent_at(message: Message) -> str:
    return (message.sent_at or message.created_at).isoformat()


def connect() -> None:
    """Called from CorrespondenceConfig.ready(): who correspondence listens to."""
    bus.subscribe(
        ClientCreated,
        send_welcome_email,
        listener="correspondence.send_welcome_email",
        after_commit=bus.AfterCommit(SEND_EMAIL, deliver_welcome_email),
    )
    bus.subscribe(ClientCreated, remember_recipient, listener="correspondence.remember_recipient")
    bus.subscribe(ClientUpdated, remember_recipient, listener="correspondence.update_recipient")
    bus.subscribe(
        PurchaseRecorded,
        send_receipt,
        listener="correspondence.send_receipt",
        after_commit=bus.AfterCommit(SEND_EMAIL, deliver_receipt),
    )
    bus.subscribe(ClientErased, erase_client, listener="correspondence.erase_client")
