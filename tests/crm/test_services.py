from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.errors import Conflict, NotFound, ValidationFailed
from crm.models import Channel, Client, Communication, ErasedClient
from crm.services import (
    client_add_purchase_value,
    client_create,
    client_erase,
    client_update,
    communication_record,
)
from tests.crm.factories import ClientFactory, CommunicationFactory, ErasedClientFactory

pytestmark = pytest.mark.django_db

REGISTERED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
OCCURRED_AT = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)


def create(**overrides: object) -> Client:
    arguments: dict = {
        "client_id": uuid.uuid4(),
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "registered_at": REGISTERED_AT,
    }
    arguments.update(overrides)
    return client_create(**arguments)


# --- client_create -------------------------------------------------------------------------------


def test_client_create_stores_the_normalised_client() -> None:
    # given a new client id
    client_id = uuid.uuid4()

    # when the client is created with untidy input
    client = client_create(
        client_id=client_id,
        email="  Ada.L@Example.COM ",
        first_name=" Ada ",
        last_name=" Lovelace ",
        phone=" +44 20 7946 0000 ",
        company=" Analytical Engines ",
        marketing_consent=True,
        registered_at=REGISTERED_AT,
    )

    # then one row holds it, trimmed, with the domain lower-cased and a first version
    stored = Client.objects.get()
    assert stored == client
    assert stored.id == client_id
    assert stored.email == "Ada.L@example.com"
    assert (stored.first_name, stored.last_name) == ("Ada", "Lovelace")
    assert (stored.phone, stored.company) == ("+44 20 7946 0000", "Analytical Engines")
    assert stored.marketing_consent is True
    assert stored.registered_at == REGISTERED_AT
    assert stored.updated_at == REGISTERED_AT
    assert stored.lifetime_values == {}
    assert stored.purchase_count == 0
    assert stored.version == 1


def test_client_create_defaults_registered_at_to_now() -> None:
    # given the time before the call
    before = datetime.now(UTC)

    # when no registration time is given
    client = create(registered_at=None)

    # then the client is registered now, with an aware timestamp
    assert before <= client.registered_at <= datetime.now(UTC)
    assert client.registered_at.tzinfo is not None
    assert client.updated_at == client.registered_at


def test_client_create_is_idempotent_for_the_same_id_and_email() -> None:
    # given a client already created
    client_id = uuid.uuid4()
    first = create(client_id=client_id, email="ada@example.com")

    # when the same registration is replayed (the domain case differs, the address does not)
    second = create(client_id=client_id, email="ada@EXAMPLE.com", first_name="Other")

    # then the existing client is returned untouched and there is still one row
    assert second.id == first.id
    assert second.first_name == "Ada"
    assert second.version == 1
    assert Client.objects.count() == 1


def test_client_create_refuses_an_email_of_another_client() -> None:
    # given a client owning the address
    owner = ClientFactory.create(email="ada@example.com")

    # when another client id registers the same address
    with pytest.raises(Conflict) as raised:
        create(email="ada@Example.com")

    # then the conflict names the owner and nothing is written
    assert raised.value.extra == {"client_id": str(owner.id)}
    assert raised.value.errors == {"email": ["A client with this email already exists."]}
    assert Client.objects.count() == 1


def test_client_create_refuses_the_same_id_with_another_email() -> None:
    # given a client
    existing = ClientFactory.create(email="ada@example.com")

    # when its id is registered again with another address
    with pytest.raises(Conflict) as raised:
        create(client_id=existing.id, email="other@example.com")

    # then it is a conflict naming the client, and the client keeps its address
    assert raised.value.detail == "This client id is registered with another email."
    assert raised.value.extra == {"client_id": str(existing.id)}
    assert Client.objects.get().email == "ada@example.com"


def test_client_create_never_recreates_an_erased_client() -> None:
    # given an erased client's tombstone
    tombstone = ErasedClientFactory.create()

    # when a late message tries to create the client again
    with pytest.raises(Conflict) as raised:
        create(client_id=tombstone.client_id)

    # then it is refused and no client exists
    assert raised.value.detail == "This client was erased."
    assert raised.value.extra == {"client_id": str(tombstone.client_id)}
    assert Client.objects.count() == 0


def test_client_create_validates_the_email() -> None:
    # when the address is not one
    with pytest.raises(ValidationFailed) as raised:
        create(email="not-an-email")

    # then the field is named and nothing is written
    assert raised.value.errors == {"email": ["Enter a valid email address."]}
    assert Client.objects.count() == 0


def test_client_create_requires_both_names() -> None:
    # when the names are blank once trimmed
    with pytest.raises(ValidationFailed) as raised:
        create(first_name="  ", last_name="")

    # then both fields are named
    assert raised.value.errors == {
        "first_name": ["This field cannot be blank."],
        "last_name": ["This field cannot be blank."],
    }
    assert Client.objects.count() == 0


def test_client_create_limits_the_name_length() -> None:
    # when a name is longer than 150 characters
    with pytest.raises(ValidationFailed) as raised:
        create(last_name="x" * 151)

    # then the limit is reported
    assert raised.value.errors == {
        "last_name": ["Ensure this value has at most 150 characters (it has 151)."]
    }


# --- client_update -------------------------------------------------------------------------------


def test_client_update_changes_fields_and_bumps_the_version() -> None:
    # given a client at version 1
    client = ClientFactory.create(registered_at=REGISTERED_AT)

    # when several fields change
    updated = client_update(
        client_id=client.id,
        first_name=" Augusta ",
        phone="555",
        company="Babbage & Co",
        marketing_consent=True,
    )

    # then the row holds the new values, one version later, updated now
    stored = Client.objects.get(id=client.id)
    assert updated.version == stored.version == 2
    assert (stored.first_name, stored.phone, stored.company) == ("Augusta", "555", "Babbage & Co")
    assert stored.marketing_consent is True
    assert stored.updated_at > REGISTERED_AT


def test_client_update_normalises_the_email() -> None:
    # given a client
    client = ClientFactory.create(email="ada@example.com")

    # when the email changes
    client_update(client_id=client.id, email=" Countess@Example.ORG ")

    # then the stored address is normalised
    assert Client.objects.get(id=client.id).email == "Countess@example.org"


def test_client_update_without_a_real_change_keeps_the_version() -> None:
    # given a client
    client = ClientFactory.create(first_name="Ada", email="ada@example.com")

    # when an update repeats the current values
    updated = client_update(client_id=client.id, first_name="Ada", email="ada@EXAMPLE.com")

    # then nothing moves
    assert updated.version == 1
    assert Client.objects.get(id=client.id).version == 1


def test_client_update_refuses_an_email_of_another_client() -> None:
    # given two clients
    owner = ClientFactory.create(email="taken@example.com")
    client = ClientFactory.create(email="ada@example.com")

    # when one takes the other's address
    with pytest.raises(Conflict) as raised:
        client_update(client_id=client.id, email="taken@example.com", phone="555")

    # then it is a conflict naming the owner, and the client is unchanged
    assert raised.value.extra == {"client_id": str(owner.id)}
    stored = Client.objects.get(id=client.id)
    assert (stored.email, stored.phone, stored.version) == ("ada@example.com", "", 1)


def test_client_update_validates_values() -> None:
    # given a client
    client = ClientFactory.create()

    # when a required name is blanked and the email is malformed
    with pytest.raises(ValidationFailed) as raised:
        client_update(client_id=client.id, last_name="", email="nope")

    # then both fields are reported and nothing changes
    assert raised.value.errors == {
        "email": ["Enter a valid email address."],
        "last_name": ["This field cannot be blank."],
    }
    assert Client.objects.get(id=client.id).version == 1


def test_client_update_refuses_fields_that_cannot_change() -> None:
    # given a client
    client = ClientFactory.create()

    # when a computed field is passed
    with pytest.raises(ValidationFailed) as raised:
        client_update(client_id=client.id, version=9)  # type: ignore[call-arg]

    # then it is named
    assert raised.value.errors == {"version": ["This field cannot be changed."]}
    assert Client.objects.get(id=client.id).version == 1


def test_client_update_of_an_unknown_client_is_not_found() -> None:
    # when the client does not exist
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        client_update(client_id=missing, phone="555")

    # then the id is named
    assert raised.value.extra == {"client_id": str(missing)}


# --- client_add_purchase_value ---------------------------------------------------------------


def test_client_add_purchase_value_accumulates_per_currency() -> None:
    # given a client without purchases
    client = ClientFactory.create()

    # when three purchases in two currencies are added
    client_add_purchase_value(client_id=client.id, total=Decimal("10.50"), currency="EUR")
    client_add_purchase_value(client_id=client.id, total=Decimal("5.25"), currency="eur")
    result = client_add_purchase_value(client_id=client.id, total=Decimal("7"), currency="USD")

    # then each currency has its own decimal-string total and every purchase counted
    stored = Client.objects.get(id=client.id)
    assert stored.lifetime_values == {"EUR": "15.75", "USD": "7.00"}
    assert stored.purchase_count == 3
    assert stored.version == 4
    assert result.version == 4


@pytest.mark.parametrize(
    ("total", "currency", "errors"),
    [
        (Decimal("0"), "EUR", {"total": ["Must be greater than 0."]}),
        (Decimal("-1.00"), "EUR", {"total": ["Must be greater than 0."]}),
        (Decimal("1.005"), "EUR", {"total": ["Use at most 2 decimal places."]}),
        (Decimal("10.00"), "EU", {"currency": ["Enter a three-letter ISO 4217 currency code."]}),
        (Decimal("10.00"), "E1R", {"currency": ["Enter a three-letter ISO 4217 currency code."]}),
    ],
)
def test_client_add_purchase_value_validates_money(
    total: Decimal, currency: str, errors: dict[str, list[str]]
) -> None:
    # given a client
    client = ClientFactory.create()

    # when the amount or currency is invalid
    with pytest.raises(ValidationFailed) as raised:
        client_add_purchase_value(client_id=client.id, total=total, currency=currency)

    # then the field is named and nothing is added
    assert raised.value.errors == errors
    stored = Client.objects.get(id=client.id)
    assert (stored.lifetime_values, stored.purchase_count, stored.version) == ({}, 0, 1)


def test_client_add_purchase_value_of_an_unknown_client_is_not_found() -> None:
    with pytest.raises(NotFound):
        client_add_purchase_value(client_id=uuid.uuid4(), total=Decimal("1.00"), currency="EUR")


# --- communication_record ------------------------------------------------------------------------


def test_communication_record_adds_to_the_history_and_bumps_the_version() -> None:
    # given a client
    client = ClientFactory.create()

    # when a communication is recorded
    communication = communication_record(
        client_id=client.id,
        channel=Channel.EMAIL,
        subject=" Welcome to Ensemble, Ada ",
        body="Hello Ada",
        occurred_at=OCCURRED_AT,
        reference="msg-1",
    )

    # then one row holds it and the client moved one version
    stored = Communication.objects.get()
    assert stored == communication
    assert stored.client_id == client.id
    assert (stored.channel, stored.subject, stored.body) == (
        "email",
        "Welcome to Ensemble, Ada",
        "Hello Ada",
    )
    assert (stored.occurred_at, stored.reference) == (OCCURRED_AT, "msg-1")
    assert Client.objects.get(id=client.id).version == 2


def test_communication_record_is_idempotent_on_its_reference() -> None:
    # given a communication recorded with a reference
    client = ClientFactory.create()
    first = communication_record(
        client_id=client.id, channel="email", subject="Welcome", reference="msg-1"
    )

    # when the same reference is recorded again
    second = communication_record(
        client_id=client.id, channel="email", subject="Welcome again", reference="msg-1"
    )

    # then the first is returned, one row exists and the version moved once
    assert second.id == first.id
    assert second.subject == "Welcome"
    assert Communication.objects.count() == 1
    assert Client.objects.get(id=client.id).version == 2


def test_communication_record_without_reference_always_adds() -> None:
    # given a client
    client = ClientFactory.create()

    # when two notes without reference are recorded
    communication_record(client_id=client.id, channel="note", subject="Called back")
    communication_record(client_id=client.id, channel="note", subject="Called back")

    # then both are kept
    assert Communication.objects.filter(client_id=client.id).count() == 2
    assert Client.objects.get(id=client.id).version == 3


def test_communication_record_references_are_per_client() -> None:
    # given two clients
    ada, grace = ClientFactory.create(), ClientFactory.create()

    # when both get a communication with the same reference
    communication_record(client_id=ada.id, channel="email", subject="Hi", reference="r-1")
    communication_record(client_id=grace.id, channel="email", subject="Hi", reference="r-1")

    # then each has its own
    assert Communication.objects.count() == 2


def test_communication_record_validates_the_channel_and_subject() -> None:
    # given a client
    client = ClientFactory.create()

    # when the channel is unknown and the subject blank
    with pytest.raises(ValidationFailed) as raised:
        communication_record(client_id=client.id, channel="fax", subject=" ")

    # then both are named and nothing is written
    assert raised.value.errors == {
        "channel": ["Value 'fax' is not a valid choice."],
        "subject": ["This field cannot be blank."],
    }
    assert Communication.objects.count() == 0
    assert Client.objects.get(id=client.id).version == 1


def test_communication_record_for_an_unknown_client_is_not_found() -> None:
    # when the client does not exist
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        communication_record(client_id=missing, channel="note", subject="Hello")

    # then nothing is written
    assert raised.value.extra == {"client_id": str(missing)}
    assert Communication.objects.count() == 0


# --- client_erase --------------------------------------------------------------------------------


def test_client_erase_deletes_the_client_and_leaves_a_tombstone() -> None:
    # given a client with two communications, and another client
    client = ClientFactory.create()
    CommunicationFactory.create_batch(2, client=client)
    other = CommunicationFactory.create()

    # when the client is erased
    client_erase(client_id=client.id)

    # then only the other client and its history remain, and a tombstone names the erased one
    assert list(Client.objects.values_list("id", flat=True)) == [other.client_id]
    assert list(Communication.objects.values_list("id", flat=True)) == [other.id]
    assert list(ErasedClient.objects.values_list("client_id", flat=True)) == [client.id]


def test_client_erase_twice_does_nothing_more() -> None:
    # given an erased client
    client = ClientFactory.create()
    client_erase(client_id=client.id)

    # when it is erased again
    client_erase(client_id=client.id)

    # then there is still one tombstone
    assert ErasedClient.objects.count() == 1


def test_client_erase_of_an_unknown_client_is_not_found() -> None:
    # when an id crm never knew is erased
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        client_erase(client_id=missing)

    # then no tombstone is written
    assert raised.value.extra == {"client_id": str(missing)}
    assert ErasedClient.objects.count() == 0
