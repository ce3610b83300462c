"""crm's choreography receivers, called directly with an event: the rows they write in crm and
the events they publish."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from crm import handlers
from crm.models import Channel, Client, Communication, ErasedClient
from integration.events import (
    ClientErasureRequested,
    ClientRegistered,
    ClientUpdateRequested,
    PurchaseRecorded,
    ReceiptSent,
    WelcomeEmailSent,
)
from integration.models import EventRecord
from tests.crm.factories import ClientFactory, CommunicationFactory
from tests.support.events import published

pytestmark = pytest.mark.django_db

SENT_AT = "2026-03-01T09:30:00+00:00"


def state_of(client: Client) -> dict[str, object]:
    """The payload of ClientCreated / ClientUpdated for this version of the client."""
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
        "schema_version": 1,
    }


# --- create_client -------------------------------------------------------------------------------


def test_create_client_creates_the_client_and_publishes_client_created_at_version_1() -> None:
    # given a registration
    client_id = uuid.uuid4()
    event = ClientRegistered(
        client_id=str(client_id),
        email="Ada@EXAMPLE.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="+44 20 7946 0000",
        company="Analytical Engines",
        marketing_consent=True,
    )

    # when crm handles it
    handlers.create_client(sender=ClientRegistered, event=event)

    # then one client holds the event's fields, at its first version
    client = Client.objects.get()
    assert (client.id, client.email, client.first_name, client.last_name) == (
        client_id,
        "Ada@example.com",
        "Ada",
        "Lovelace",
    )
    assert (client.phone, client.company, client.marketing_consent, client.version) == (
        "+44 20 7946 0000",
        "Analytical Engines",
        True,
        1,
    )
    # and exactly one ClientCreated carries that whole profile
    assert published() == [("ClientCreated", "crm", state_of(client))]
    assert EventRecord.objects.get().client_id == client_id


def test_create_client_replayed_keeps_one_client_and_announces_the_same_version() -> None:
    # given a registration crm has already handled
    event = ClientRegistered(
        client_id=str(uuid.uuid4()), email="ada@example.com", first_name="Ada", last_name="L"
    )
    handlers.create_client(sender=ClientRegistered, event=event)

    # when the same registration arrives again
    handlers.create_client(sender=ClientRegistered, event=event)

    # then there is still one client, and both announcements carry its version 1
    client = Client.objects.get()
    assert client.version == 1
    assert published() == [("ClientCreated", "crm", state_of(client))] * 2


# --- update_client -------------------------------------------------------------------------------


def test_update_client_applies_the_changes_and_publishes_client_updated_at_the_new_version() -> (
    None
):
    # given a client at version 1
    client = ClientFactory.create(last_name="Lovelace", marketing_consent=False)

    # when a change is requested
    event = ClientUpdateRequested(
        client_id=str(client.id), changes={"last_name": "King", "marketing_consent": True}
    )
    handlers.update_client(sender=ClientUpdateRequested, event=event)

    # then the client holds the change at version 2
    client.refresh_from_db()
    assert (client.last_name, client.marketing_consent, client.version) == ("King", True, 2)
    # and exactly one ClientUpdated carries the new profile
    assert published() == [("ClientUpdated", "crm", state_of(client))]
    assert published()[0][2]["client_version"] == 2


def test_update_client_without_a_real_change_announces_the_unchanged_version() -> None:
    # given a client at version 1
    client = ClientFactory.create(last_name="Lovelace")

    # when the change asks for what the client already holds
    event = ClientUpdateRequested(client_id=str(client.id), changes={"last_name": "Lovelace"})
    handlers.update_client(sender=ClientUpdateRequested, event=event)

    # then the version stays, and the announcement carries it (replicas ignore it)
    client.refresh_from_db()
    assert client.version == 1
    assert published() == [("ClientUpdated", "crm", state_of(client))]


# --- add_purchase_value --------------------------------------------------------------------------


def test_add_purchase_value_adds_to_the_lifetime_value_and_publishes_nothing() -> None:
    # given a client with an earlier purchase in euros
    client = ClientFactory.create(lifetime_values={"EUR": "10.00"}, purchase_count=1)

    # when a purchase is recorded in sales
    event = PurchaseRecorded(
        client_id=str(client.id),
        purchase_id=str(uuid.uuid4()),
        order_ref="ORD-00001",
        total="49.90",
        currency="EUR",
        purchased_at=SENT_AT,
    )
    handlers.add_purchase_value(sender=PurchaseRecorded, event=event)

    # then its value and count grow, at a new version, and nobody is told
    client.refresh_from_db()
    assert (client.lifetime_values, client.purchase_count, client.version) == (
        {"EUR": "59.90"},
        2,
        2,
    )
    assert published() == []


# --- record_welcome_email / record_receipt -------------------------------------------------------


def test_record_welcome_email_records_the_email_and_publishes_communication_recorded() -> None:
    # given a client
    client = ClientFactory.create()
    message_id = str(uuid.uuid4())

    # when correspondence says it sent the welcome email
    event = WelcomeEmailSent(
        client_id=str(client.id),
        message_id=message_id,
        subject="Welcome to Ensemble, Ada",
        sent_at=SENT_AT,
    )
    handlers.record_welcome_email(sender=WelcomeEmailSent, event=event)

    # then the email is in the client's history, under the message's id
    communication = Communication.objects.get()
    assert (communication.client_id, communication.channel, communication.subject) == (
        client.id,
        Channel.EMAIL,
        "Welcome to Ensemble, Ada",
    )
    assert (communication.occurred_at, communication.reference) == (
        datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        message_id,
    )
    client.refresh_from_db()
    assert client.version == 2
    # and exactly one CommunicationRecorded tells the others
    assert published() == [
        (
            "CommunicationRecorded",
            "crm",
            {
                "client_id": str(client.id),
                "communication_id": str(communication.id),
                "channel": "email",
                "subject": "Welcome to Ensemble, Ada",
                "occurred_at": SENT_AT,
                "schema_version": 1,
            },
        )
    ]


def test_record_receipt_records_the_email_and_publishes_communication_recorded() -> None:
    # given a client
    client = ClientFactory.create()
    message_id = str(uuid.uuid4())

    # when correspondence says it sent a receipt
    event = ReceiptSent(
        client_id=str(client.id),
        message_id=message_id,
        order_ref="ORD-00001",
        subject="Your receipt for order ORD-00001",
        sent_at=SENT_AT,
    )
    handlers.record_receipt(sender=ReceiptSent, event=event)

    # then the receipt is in the client's history, under the message's id
    communication = Communication.objects.get()
    assert (communication.client_id, communication.channel, communication.reference) == (
        client.id,
        Channel.EMAIL,
        message_id,
    )
    assert communication.subject == "Your receipt for order ORD-00001"
    # and exactly one CommunicationRecorded tells the others
    assert published() == [
        (
            "CommunicationRecorded",
            "crm",
            {
                "client_id": str(client.id),
                "communication_id": str(communication.id),
                "channel": "email",
                "subject": "Your receipt for order ORD-00001",
                "occurred_at": SENT_AT,
                "schema_version": 1,
            },
        )
    ]


# --- erase_client --------------------------------------------------------------------------------


def test_erase_client_deletes_the_client_leaves_a_tombstone_and_publishes_client_erased() -> None:
    # given a client with a communication, and another client
    client = ClientFactory.create()
    CommunicationFactory.create(client=client)
    other = CommunicationFactory.create()

    # when its erasure is requested
    handlers.erase_client(
        sender=ClientErasureRequested, event=ClientErasureRequested(client_id=str(client.id))
    )

    # then it and its history are gone, its id is remembered, and the other client is untouched
    assert list(Client.objects.values_list("id", flat=True)) == [other.client_id]
    assert list(Communication.objects.all()) == [other]
    assert list(ErasedClient.objects.values_list("client_id", flat=True)) == [client.id]
    # and exactly one ClientErased, with nothing personal in it, tells the others
    assert published() == [
        ("ClientErased", "crm", {"client_id": str(client.id), "schema_version": 1})
    ]
