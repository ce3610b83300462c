from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import NotFound
from crm.selectors import (
    ClientCard,
    CommunicationEntry,
    client_card,
    client_get,
    client_get_by_email,
    client_id_by_email,
    client_is_erased,
    client_search,
    communication_entries,
    communication_list,
)
from tests.crm.factories import ClientFactory, CommunicationFactory, ErasedClientFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_client_get_returns_the_client() -> None:
    # given a client
    client = ClientFactory.create()

    # when it is fetched by id
    # then it is that client
    assert client_get(client_id=client.id) == client


def test_client_get_of_an_unknown_client_is_not_found() -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        client_get(client_id=missing)
    assert raised.value.extra == {"client_id": str(missing)}


def test_client_get_by_email_normalises_the_address() -> None:
    # given a client
    client = ClientFactory.create(email="Ada@example.com")

    # when looked up with an untidy address, a missing one, or another local-part case
    # then only the same normalised address finds it
    assert client_get_by_email(email=" Ada@EXAMPLE.com ") == client
    assert client_get_by_email(email="grace@example.com") is None
    assert client_get_by_email(email="ada@example.com") is None


def test_client_id_by_email_is_the_holders_id_by_the_normalised_address() -> None:
    client = ClientFactory.create(email="Ada@example.com")

    assert client_id_by_email(email=" Ada@EXAMPLE.com ") == client.id
    assert client_id_by_email(email="grace@example.com") is None
    assert client_id_by_email(email="ada@example.com") is None


def test_client_search_matches_any_field_case_insensitively() -> None:
    # given three clients
    ada = ClientFactory.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    grace = ClientFactory.create(first_name="Grace", last_name="Hopper", company="Navy Labs")
    ClientFactory.create(first_name="Alan", last_name="Turing", email="alan@bletchley.uk")

    # when searching by part of a name, an email or a company
    # then exactly the matching clients come back
    assert list(client_search(query="LOVE")) == [ada]
    assert list(client_search(query="ada@example")) == [ada]
    assert list(client_search(query="navy")) == [grace]


def test_client_search_needs_every_term_to_match() -> None:
    # given two clients sharing a first name
    ada_l = ClientFactory.create(first_name="Ada", last_name="Lovelace")
    ClientFactory.create(first_name="Ada", last_name="Byron")

    # when two terms are given
    # then only the client matching both is found
    assert list(client_search(query="  ada   love ")) == [ada_l]
    assert list(client_search(query="ada nobody")) == []


def test_client_search_with_an_empty_query_lists_everyone_newest_first() -> None:
    # given two clients registered at different times
    older = ClientFactory.create(registered_at=NOON)
    newer = ClientFactory.create(registered_at=NOON + timedelta(days=1))

    # when the query is blank
    # then every client comes back, newest first
    assert list(client_search(query=" ")) == [newer, older]


def test_communication_list_is_the_clients_history_newest_first() -> None:
    # given communications of two clients
    client = ClientFactory.create()
    old = CommunicationFactory.create(client=client, occurred_at=NOON)
    new = CommunicationFactory.create(client=client, occurred_at=NOON + timedelta(hours=1))
    CommunicationFactory.create(occurred_at=NOON + timedelta(hours=2))

    # when the client's history is listed
    # then it holds only its communications, newest first
    assert list(communication_list(client_id=client.id)) == [new, old]


def test_client_card_is_what_the_model_holds_read_in_plain_sql() -> None:
    client = ClientFactory.create(version=3, marketing_consent=True, registered_at=NOON)

    assert client_card(client_id=client.id) == ClientCard(
        id=client.id,
        version=3,
        email=client.email,
        first_name=client.first_name,
        last_name=client.last_name,
        phone=client.phone,
        company=client.company,
        marketing_consent=True,
        registered_at=NOON,
    )
    assert client_card(client_id=uuid.uuid4()) is None


def test_communication_entries_are_the_communication_list_read_in_plain_sql() -> None:
    # given communications of two clients, two of one client at the same moment
    client = ClientFactory.create()
    old = CommunicationFactory.create(client=client, occurred_at=NOON, recorded_at=NOON)
    same_later = CommunicationFactory.create(
        client=client, occurred_at=NOON, recorded_at=NOON + timedelta(minutes=1)
    )
    new = CommunicationFactory.create(client=client, occurred_at=NOON + timedelta(hours=1))
    CommunicationFactory.create(occurred_at=NOON + timedelta(hours=2))

    # then the entries are the client's, newest first, as the list orders them
    assert communication_entries(client_id=client.id) == [
        CommunicationEntry(item.id, item.channel, item.subject, item.occurred_at)
        for item in (new, same_later, old)
    ]
    assert [e.id for e in communication_entries(client_id=client.id)] == [
        item.id for item in communication_list(client_id=client.id)
    ]
    assert communication_entries(client_id=uuid.uuid4()) == []


def test_client_is_erased_reads_the_tombstones() -> None:
    # given an erased id and a living client
    tombstone = ErasedClientFactory.create()
    client = ClientFactory.create()

    # then only the tombstone's id is erased
    assert client_is_erased(client_id=tombstone.client_id) is True
    assert client_is_erased(client_id=client.id) is False
