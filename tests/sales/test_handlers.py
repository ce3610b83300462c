"""sales' choreography receivers, called directly with an event: the replicas, accounts and
purchases they write in sales and the events they publish."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from integration.events import (
    ClientCreated,
    ClientErased,
    ClientUpdated,
    CommunicationRecorded,
    PurchaseRequested,
)
from sales import handlers
from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase
from tests.sales.factories import (
    CommunicationReplicaFactory,
    CustomerAccountFactory,
    CustomerReplicaFactory,
    PurchaseFactory,
)
from tests.support.events import published

pytestmark = pytest.mark.django_db

REGISTERED_AT = "2026-01-01T08:00:00+00:00"
PURCHASED_AT = "2026-03-01T09:30:00+00:00"


def client_state(
    event_type: type[ClientCreated] | type[ClientUpdated],
    client_id: uuid.UUID,
    version: int,
    **changes: object,
) -> ClientCreated | ClientUpdated:
    profile: dict[str, object] = {
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "company": "Analytical Engines",
        "marketing_consent": False,
        **changes,
    }
    return event_type(
        client_id=str(client_id),
        client_version=version,
        registered_at=REGISTERED_AT,
        **profile,
    )


def replica_row(client_id: uuid.UUID) -> tuple[object, ...]:
    replica = CustomerReplica.objects.get(client_id=client_id)
    return (
        replica.email,
        replica.first_name,
        replica.last_name,
        replica.phone,
        replica.company,
        replica.marketing_consent,
        replica.registered_at,
        replica.client_version,
    )


# --- replicate_client ----------------------------------------------------------------------------


def test_replicate_client_on_client_created_copies_the_profile_and_opens_the_account() -> None:
    # given a client crm has just created
    client_id = uuid.uuid4()
    event = client_state(ClientCreated, client_id, version=1)

    # when sales handles ClientCreated
    handlers.replicate_client(sender=ClientCreated, event=event)

    # then its replica holds the profile at version 1, its account is open, and nothing is said
    assert replica_row(client_id) == (
        "ada@example.com",
        "Ada",
        "Lovelace",
        "+44 20 7946 0000",
        "Analytical Engines",
        False,
        datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
        1,
    )
    assert list(CustomerAccount.objects.values_list("client_id", flat=True)) == [client_id]
    assert published() == []


def test_replicate_client_on_a_newer_client_updated_brings_the_replica_up_to_date() -> None:
    # given sales holds version 1 of a client and its account
    replica = CustomerReplicaFactory.create(client_version=1, last_name="Lovelace")
    CustomerAccountFactory.create(client_id=replica.client_id)

    # when ClientUpdated at version 2 arrives
    event = client_state(
        ClientUpdated, replica.client_id, version=2, last_name="King", marketing_consent=True
    )
    handlers.replicate_client(sender=ClientUpdated, event=event)

    # then the replica holds version 2, and no second account is opened
    replica.refresh_from_db()
    assert (replica.last_name, replica.marketing_consent, replica.client_version) == (
        "King",
        True,
        2,
    )
    assert CustomerAccount.objects.count() == 1
    assert published() == []


def test_replicate_client_ignores_a_stale_client_updated() -> None:
    # given sales holds version 3 of a client
    replica = CustomerReplicaFactory.create(client_version=3, last_name="King")
    before = replica_row(replica.client_id)

    # when ClientUpdated at version 2 arrives late
    event = client_state(ClientUpdated, replica.client_id, version=2, last_name="Lovelace")
    handlers.replicate_client(sender=ClientUpdated, event=event)

    # then the replica is unchanged, and no account is opened by an update
    assert replica_row(replica.client_id) == before
    assert CustomerAccount.objects.count() == 0
    assert published() == []


# --- replicate_communication ---------------------------------------------------------------------


def communication_recorded(
    communication_id: uuid.UUID, client_id: uuid.UUID, subject: str
) -> CommunicationRecorded:
    return CommunicationRecorded(
        client_id=str(client_id),
        communication_id=str(communication_id),
        channel="email",
        subject=subject,
        occurred_at=PURCHASED_AT,
    )


def test_replicate_communication_copies_the_communication() -> None:
    # given a communication crm recorded
    communication_id, client_id = uuid.uuid4(), uuid.uuid4()
    event = communication_recorded(communication_id, client_id, "Welcome to Ensemble, Ada")

    # when sales handles it
    handlers.replicate_communication(sender=CommunicationRecorded, event=event)

    # then one replica holds it under crm's id
    replica = CommunicationReplica.objects.get()
    assert (replica.id, replica.client_id, replica.channel, replica.subject) == (
        communication_id,
        client_id,
        "email",
        "Welcome to Ensemble, Ada",
    )
    assert replica.occurred_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert published() == []


def test_replicate_communication_replayed_keeps_one_copy_with_the_latest_values(
    django_assert_num_queries: Any,
) -> None:
    # given a communication already copied
    communication_id, client_id = uuid.uuid4(), uuid.uuid4()
    first = communication_recorded(communication_id, client_id, "Welcome")
    handlers.replicate_communication(sender=CommunicationRecorded, event=first)

    # when the event comes again, its subject longer than a replica holds
    again = dataclasses.replace(first, subject="x" * 300)
    with django_assert_num_queries(1):  # one upsert: no savepoint, no read first
        handlers.replicate_communication(sender=CommunicationRecorded, event=again)

    # then the one copy holds what it says, cut to the column's size
    assert list(CommunicationReplica.objects.values_list("id", "subject")) == [
        (communication_id, "x" * 255)
    ]


# --- record_purchase -----------------------------------------------------------------------------


def purchase_requested(client_id: uuid.UUID, order_ref: str = "ORD-00001") -> PurchaseRequested:
    return PurchaseRequested(
        client_id=str(client_id),
        order_ref=order_ref,
        total="49.90",
        currency="EUR",
        purchased_at=PURCHASED_AT,
    )


def test_record_purchase_records_it_and_publishes_purchase_recorded() -> None:
    # given an order the shop posted
    client_id = uuid.uuid4()

    # when sales handles it
    handlers.record_purchase(sender=PurchaseRequested, event=purchase_requested(client_id))

    # then one purchase holds it
    purchase = Purchase.objects.get()
    assert (purchase.client_id, purchase.order_ref, purchase.total, purchase.currency) == (
        client_id,
        "ORD-00001",
        Decimal("49.90"),
        "EUR",
    )
    assert purchase.purchased_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    # and exactly one PurchaseRecorded tells the others
    assert published() == [
        (
            "PurchaseRecorded",
            "sales",
            {
                "client_id": str(client_id),
                "purchase_id": str(purchase.id),
                "order_ref": "ORD-00001",
                "total": "49.90",
                "currency": "EUR",
                "purchased_at": PURCHASED_AT,
                "schema_version": 1,
            },
        )
    ]


def test_record_purchase_of_an_order_already_recorded_publishes_nothing() -> None:
    # given the order is already recorded
    recorded = PurchaseFactory.create(order_ref="ORD-00001")

    # when it is posted again
    handlers.record_purchase(sender=PurchaseRequested, event=purchase_requested(recorded.client_id))

    # then there is still the one purchase, and nobody hears of it twice
    assert list(Purchase.objects.all()) == [recorded]
    assert published() == []


# --- erase_client --------------------------------------------------------------------------------


def test_erase_client_removes_the_replicas_the_account_and_the_purchases() -> None:
    # given sales holds a client's replica, communications, account and purchase, and another's
    replica = CustomerReplicaFactory.create()
    client_id = replica.client_id
    CommunicationReplicaFactory.create(client_id=client_id)
    CustomerAccountFactory.create(client_id=client_id)
    PurchaseFactory.create(client_id=client_id)
    other = CustomerReplicaFactory.create()
    other_purchase = PurchaseFactory.create(client_id=other.client_id)

    # when ClientErased arrives
    handlers.erase_client(sender=ClientErased, event=ClientErased(client_id=str(client_id)))

    # then nothing of the client is left in sales, and the other client is untouched
    assert list(CustomerReplica.objects.all()) == [other]
    assert CommunicationReplica.objects.count() == 0
    assert CustomerAccount.objects.count() == 0
    assert list(Purchase.objects.all()) == [other_purchase]
    assert published() == []
