"""correspondence's choreography receivers, called directly with an event: the recipients and
messages they write in correspondence, and, for the emails, the parts the bus runs after commit:
what they send (captured in Django's locmem outbox) and what they settle the delivery with."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from pytest_django.fixtures import Settings

from correspondence import handlers
from correspondence.models import ERASED_RECIPIENT, Message, MessageStatus, Recipient
from integration.events import (
    ClientCreated,
    ClientErased,
    ClientUpdated,
    Event,
    PurchaseRecorded,
    ReceiptSent,
    WelcomeEmailSent,
)
from tests.correspondence.factories import MessageFactory, RecipientFactory
from tests.support.events import published

pytestmark = pytest.mark.django_db

WELCOME_BODY = (
    "Hello Ada,\n"
    "\n"
    "Thank you for registering with Ensemble. Your account is ready, and from now on\n"
    "we will keep you informed about your orders.\n"
    "\n"
    "The Ensemble team\n"
)
RECEIPT_BODY = (
    "Hello Ada,\n\nThank you for your order ORD-00001.\n\nTotal: 49.90 EUR\n\nThe Ensemble team\n"
)
Outbox = list[mail.EmailMessage]


def client_state(
    event_type: type[ClientCreated] | type[ClientUpdated],
    client_id: uuid.UUID,
    version: int,
    *,
    email: str = "Ada@EXAMPLE.com",
    first_name: str = "Ada",
) -> ClientCreated | ClientUpdated:
    return event_type(
        client_id=str(client_id),
        client_version=version,
        registered_at="2026-01-01T08:00:00+00:00",
        email=email,
        first_name=first_name,
        last_name="Lovelace",
        phone="",
        company="",
        marketing_consent=False,
    )


def recipient_row(client_id: uuid.UUID) -> tuple[object, ...]:
    recipient = Recipient.objects.get(client_id=client_id)
    return (recipient.email, recipient.first_name, recipient.client_version)


def sent(outbox: Outbox) -> list[tuple[object, ...]]:
    return [(email.subject, email.body, email.from_email, email.to) for email in outbox]


# --- remember_recipient --------------------------------------------------------------------------


def test_remember_recipient_on_client_created_keeps_where_the_email_goes(
    mailoutbox: Outbox,
) -> None:
    # given a client crm has just created
    client_id = uuid.uuid4()

    # when correspondence handles ClientCreated
    event = client_state(ClientCreated, client_id, version=1)
    handlers.remember_recipient(sender=ClientCreated, event=event)

    # then one recipient holds the normalised address at version 1; nothing is sent or said
    assert recipient_row(client_id) == ("Ada@example.com", "Ada", 1)
    assert Recipient.objects.count() == 1
    assert (mailoutbox, published()) == ([], [])


def test_remember_recipient_on_a_newer_client_updated_moves_the_address() -> None:
    # given correspondence knows version 1 of a client
    recipient = RecipientFactory.create(email="ada@example.com", client_version=1)

    # when ClientUpdated at version 2 changes the address
    event = client_state(ClientUpdated, recipient.client_id, version=2, email="ada@new.example")
    handlers.remember_recipient(sender=ClientUpdated, event=event)

    # then the recipient holds version 2
    assert recipient_row(recipient.client_id) == ("ada@new.example", "Ada", 2)
    assert published() == []


def test_remember_recipient_ignores_a_stale_client_updated() -> None:
    # given correspondence knows version 3 of a client
    recipient = RecipientFactory.create(email="ada@new.example", first_name="Ada", client_version=3)

    # when ClientUpdated at version 2 arrives late
    event = client_state(
        ClientUpdated, recipient.client_id, version=2, email="ada@old.example", first_name="A"
    )
    handlers.remember_recipient(sender=ClientUpdated, event=event)

    # then the recipient is unchanged
    assert recipient_row(recipient.client_id) == ("ada@new.example", "Ada", 3)
    assert published() == []


# --- send_welcome_email / deliver_welcome_email -------------------------------------------------


class Settle:
    """The bus's settle, recorded: (status, *events) of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __call__(self, status: str, *events: Event) -> None:
        self.calls.append((status, *events))


def test_send_welcome_email_queues_the_email_without_sending_it(mailoutbox: Outbox) -> None:
    # given a client crm has just created
    client_id = uuid.uuid4()

    # when correspondence handles ClientCreated (in the delivery's transaction)
    event = client_state(ClientCreated, client_id, version=1)
    queued = handlers.send_welcome_email(sender=ClientCreated, event=event)

    # then one message holds the rendered email, to the normalised address, claimed for sending
    # by this delivery (it sends it after commit without claiming it again)
    message = Message.objects.get()
    assert (queued.message.id, queued.claimed) == (message.id, True)
    assert (message.client_id, message.template_key, message.reference, message.status) == (
        client_id,
        "welcome",
        f"client:{client_id}",
        MessageStatus.SENDING,
    )
    assert message.attempts == 1
    assert (message.recipient, message.subject, message.body) == (
        "Ada@example.com",
        "Welcome to Ensemble, Ada",
        WELCOME_BODY,
    )
    # and nothing leaves or is said before the transaction commits
    assert (mailoutbox, published()) == ([], [])


def test_deliver_welcome_email_sends_it_once_and_settles_with_welcome_email_sent(
    mailoutbox: Outbox, settings: Settings
) -> None:
    # given a queued welcome email
    client_id = uuid.uuid4()
    event = client_state(ClientCreated, client_id, version=1)
    queued = handlers.send_welcome_email(sender=ClientCreated, event=event)
    settle = Settle()

    # when it is delivered after commit
    handlers.deliver_welcome_email(queued, settle)

    # then exactly the welcome email left, with the message's own Message-ID
    message = Message.objects.get()
    assert sent(mailoutbox) == [
        (
            "Welcome to Ensemble, Ada",
            WELCOME_BODY,
            settings.DEFAULT_FROM_EMAIL,
            ["Ada@example.com"],
        )
    ]
    assert mailoutbox[0].extra_headers["Message-ID"] == message.message_id_header
    assert (message.status, message.attempts) == (MessageStatus.SENT, 1)
    assert message.sent_at is not None
    # and the bus is told once: sent, announcing WelcomeEmailSent (it publishes it)
    assert settle.calls == [
        (
            "sent",
            WelcomeEmailSent(
                client_id=str(client_id),
                message_id=str(message.id),
                subject="Welcome to Ensemble, Ada",
                sent_at=message.sent_at.isoformat(),
            ),
        )
    ]
    assert published() == []


def test_deliver_welcome_email_of_an_erased_client_sends_and_announces_nothing(
    mailoutbox: Outbox,
) -> None:
    # given a queued welcome email whose client was erased before it left
    client_id = uuid.uuid4()
    event = client_state(ClientCreated, client_id, version=1)
    queued = handlers.send_welcome_email(sender=ClientCreated, event=event)
    handlers.erase_client(sender=ClientErased, event=ClientErased(client_id=str(client_id)))
    settle = Settle()

    # when it is delivered after commit
    handlers.deliver_welcome_email(queued, settle)

    # then nothing leaves, and the bus is told it was cancelled, with no event
    assert mailoutbox == []
    assert Message.objects.get().status == MessageStatus.CANCELLED
    assert settle.calls == [("cancelled",)]


# --- send_receipt / deliver_receipt --------------------------------------------------------------


def purchase_recorded(client_id: uuid.UUID, purchase_id: uuid.UUID) -> PurchaseRecorded:
    return PurchaseRecorded(
        client_id=str(client_id),
        purchase_id=str(purchase_id),
        order_ref="ORD-00001",
        total="49.90",
        currency="EUR",
        purchased_at="2026-03-01T09:30:00+00:00",
    )


def test_send_receipt_queues_the_receipt_to_the_recipient_without_sending_it(
    mailoutbox: Outbox,
) -> None:
    # given correspondence knows where the client's email goes
    recipient = RecipientFactory.create(email="ada@example.com", first_name="Ada")
    purchase_id = uuid.uuid4()

    # when a purchase is recorded
    event = purchase_recorded(recipient.client_id, purchase_id)
    queued = handlers.send_receipt(sender=PurchaseRecorded, event=event)

    # then one message holds the rendered receipt, to the recipient, claimed for sending
    message = Message.objects.get()
    assert (queued[0].message.id, queued[0].claimed, queued[1]) == (message.id, True, "ORD-00001")
    assert (message.client_id, message.template_key, message.reference, message.status) == (
        recipient.client_id,
        "receipt",
        f"purchase:{purchase_id}",
        MessageStatus.SENDING,
    )
    assert (message.recipient, message.subject, message.body) == (
        "ada@example.com",
        "Your receipt for order ORD-00001",
        RECEIPT_BODY,
    )
    assert (mailoutbox, published()) == ([], [])


def test_deliver_receipt_sends_it_and_settles_with_receipt_sent(
    mailoutbox: Outbox, settings: Settings
) -> None:
    # given a queued receipt
    recipient = RecipientFactory.create(email="ada@example.com", first_name="Ada")
    event = purchase_recorded(recipient.client_id, uuid.uuid4())
    queued = handlers.send_receipt(sender=PurchaseRecorded, event=event)
    settle = Settle()

    # when it is delivered after commit
    handlers.deliver_receipt(queued, settle)

    # then exactly the receipt left
    message = Message.objects.get()
    assert sent(mailoutbox) == [
        (
            "Your receipt for order ORD-00001",
            RECEIPT_BODY,
            settings.DEFAULT_FROM_EMAIL,
            ["ada@example.com"],
        )
    ]
    assert message.status == MessageStatus.SENT
    assert message.sent_at is not None
    # and the bus is told once: sent, announcing ReceiptSent
    assert settle.calls == [
        (
            "sent",
            ReceiptSent(
                client_id=str(recipient.client_id),
                order_ref="ORD-00001",
                message_id=str(message.id),
                subject="Your receipt for order ORD-00001",
                sent_at=message.sent_at.isoformat(),
            ),
        )
    ]
    assert published() == []


def test_send_receipt_before_the_recipient_is_known_raises_to_be_retried(
    mailoutbox: Outbox,
) -> None:
    # given ClientCreated has not reached correspondence yet
    client_id = uuid.uuid4()

    # when a purchase is recorded, then the handler raises so that the bus retries it later
    with pytest.raises(handlers.RecipientUnknown):
        handlers.send_receipt(
            sender=PurchaseRecorded, event=purchase_recorded(client_id, uuid.uuid4())
        )

    # and nothing was queued, sent or said
    assert (mailoutbox, Message.objects.count(), published()) == ([], 0, [])


# --- erase_client --------------------------------------------------------------------------------


def test_erase_client_forgets_the_recipient_blanks_the_messages_and_cancels_the_unsent() -> None:
    # given a client's recipient, a sent and a queued message, and another client's
    recipient = RecipientFactory.create()
    sent_message = MessageFactory.create(client_id=recipient.client_id, recipient=recipient.email)
    queued_message = MessageFactory.create(
        client_id=recipient.client_id, status=MessageStatus.QUEUED, sent_at=None
    )
    other_recipient = RecipientFactory.create()
    other_message = MessageFactory.create(client_id=other_recipient.client_id)

    # when ClientErased arrives
    handlers.erase_client(
        sender=ClientErased, event=ClientErased(client_id=str(recipient.client_id))
    )

    # then the recipient is gone, and the messages stay as a record without personal data
    assert list(Recipient.objects.all()) == [other_recipient]
    blanked = {
        message.pk: (message.recipient, message.subject, message.body, message.error)
        for message in Message.objects.filter(client_id=recipient.client_id)
    }
    assert blanked == {
        sent_message.pk: (ERASED_RECIPIENT, "", "", ""),
        queued_message.pk: (ERASED_RECIPIENT, "", "", ""),
    }
    # what was sent stays sent; what was not will never be
    statuses = dict(
        Message.objects.filter(client_id=recipient.client_id).values_list("pk", "status")
    )
    assert statuses == {
        sent_message.pk: MessageStatus.SENT,
        queued_message.pk: MessageStatus.CANCELLED,
    }
    # and the other client's message is untouched
    untouched = Message.objects.get(pk=other_message.pk)
    assert (untouched.recipient, untouched.subject, untouched.status) == (
        other_message.recipient,
        "Welcome to Ensemble, Ada",
        MessageStatus.SENT,
    )
    assert published() == []
