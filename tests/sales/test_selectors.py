from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sales.selectors import (
    CommunicationCopy,
    CustomerCopy,
    PurchaseRow,
    account_get,
    customer_history,
    customer_replica_get,
    purchase_get_by_ref,
    purchase_list,
    purchase_rows,
)
from tests.sales.factories import (
    CommunicationReplicaFactory,
    CustomerAccountFactory,
    CustomerReplicaFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

NOON = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def test_account_get_returns_the_clients_account_or_none() -> None:
    # given an account
    account = CustomerAccountFactory.create()

    # then its client finds it and another id finds nothing
    assert account_get(client_id=account.client_id) == account
    assert account_get(client_id=uuid.uuid4()) is None


def test_purchase_list_is_the_clients_purchases_newest_first() -> None:
    # given purchases of two clients
    client_id = uuid.uuid4()
    old = PurchaseFactory.create(client_id=client_id, purchased_at=NOON)
    new = PurchaseFactory.create(client_id=client_id, purchased_at=NOON + timedelta(days=1))
    PurchaseFactory.create(purchased_at=NOON + timedelta(days=2))

    # then the client's list holds only its purchases, newest first
    assert list(purchase_list(client_id=client_id)) == [new, old]
    assert list(purchase_list(client_id=uuid.uuid4())) == []


def test_purchase_rows_are_the_purchase_list_read_in_plain_sql() -> None:
    # given purchases of two clients, two of one client at the same moment
    client_id = uuid.uuid4()
    old = PurchaseFactory.create(
        client_id=client_id,
        purchased_at=NOON,
        recorded_at=NOON,
        total=Decimal("19.90"),
        currency="EUR",
    )
    same_later = PurchaseFactory.create(
        client_id=client_id, purchased_at=NOON, recorded_at=NOON + timedelta(minutes=1)
    )
    new = PurchaseFactory.create(client_id=client_id, purchased_at=NOON + timedelta(days=1))
    PurchaseFactory.create(purchased_at=NOON + timedelta(days=2))

    # then the rows are the client's, in the list's order, with the model's values
    rows = purchase_rows(client_id=client_id)
    assert rows == [
        PurchaseRow(p.order_ref, p.total, p.currency, p.purchased_at)
        for p in purchase_list(client_id=client_id)
    ]
    assert [row.order_ref for row in rows] == [new.order_ref, same_later.order_ref, old.order_ref]
    assert (rows[2].total, rows[2].currency, rows[2].purchased_at) == (
        Decimal("19.90"),
        "EUR",
        NOON,
    )
    assert purchase_rows(client_id=uuid.uuid4()) == []


def test_purchase_get_by_ref_finds_the_clients_order() -> None:
    # given an order of a client and the same reference for another client
    purchase = PurchaseFactory.create(order_ref="ORD-1")
    PurchaseFactory.create(order_ref="ORD-1")

    # then the pair (client, reference) finds exactly one, and nothing else matches
    assert purchase_get_by_ref(client_id=purchase.client_id, order_ref=" ORD-1 ") == purchase
    assert purchase_get_by_ref(client_id=purchase.client_id, order_ref="ORD-2") is None
    assert purchase_get_by_ref(client_id=uuid.uuid4(), order_ref="ORD-1") is None


def test_customer_replica_get_reads_the_copy_as_the_model_holds_it() -> None:
    # given a replica with every field set
    replica = CustomerReplicaFactory.create(
        email="ada@example.com",
        phone="+44 20 7946 0000",
        company="Analytical Engines",
        marketing_consent=True,
        registered_at=NOON,
        client_version=7,
        as_of=NOON + timedelta(microseconds=250),
    )

    # then it is read back exactly, times aware, and another id reads nothing
    assert customer_replica_get(client_id=replica.client_id) == CustomerCopy(
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="+44 20 7946 0000",
        company="Analytical Engines",
        marketing_consent=True,
        registered_at=NOON,
        client_version=7,
        as_of=NOON + timedelta(microseconds=250),
    )
    assert customer_replica_get(client_id=uuid.uuid4()) is None


def test_customer_history_is_the_clients_copies_and_purchases_newest_first() -> None:
    # given a client's two communications and two purchases, interleaved in time, and another
    # client's of each
    client_id = uuid.uuid4()
    first = CommunicationReplicaFactory.create(client_id=client_id, occurred_at=NOON)
    last = CommunicationReplicaFactory.create(
        client_id=client_id, occurred_at=NOON + timedelta(hours=3)
    )
    PurchaseFactory.create(
        client_id=client_id, order_ref="A", total=Decimal("10.50"), purchased_at=NOON
    )
    PurchaseFactory.create(
        client_id=client_id,
        order_ref="B",
        total=Decimal("1234567890.05"),
        currency="GBP",
        purchased_at=NOON + timedelta(hours=2, microseconds=5),
    )
    CommunicationReplicaFactory.create(occurred_at=NOON)
    PurchaseFactory.create(purchased_at=NOON)

    # then each list holds only the client's rows, newest first, values exact
    communications, purchases = customer_history(client_id=client_id)
    assert communications == [
        CommunicationCopy(last.id, "email", last.subject, NOON + timedelta(hours=3)),
        CommunicationCopy(first.id, "email", first.subject, NOON),
    ]
    assert purchases == [
        PurchaseRow(
            "B", Decimal("1234567890.05"), "GBP", NOON + timedelta(hours=2, microseconds=5)
        ),
        PurchaseRow("A", Decimal("10.50"), "EUR", NOON),
    ]
    assert customer_history(client_id=uuid.uuid4()) == ([], [])
