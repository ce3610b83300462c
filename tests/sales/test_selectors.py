from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sales.selectors import account_get, purchase_get_by_ref, purchase_list
from tests.sales.factories import CustomerAccountFactory, PurchaseFactory

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


def test_purchase_get_by_ref_finds_the_clients_order() -> None:
    # given an order of a client and the same reference for another client
    purchase = PurchaseFactory.create(order_ref="ORD-1")
    PurchaseFactory.create(order_ref="ORD-1")

    # then the pair (client, reference) finds exactly one, and nothing else matches
    assert purchase_get_by_ref(client_id=purchase.client_id, order_ref=" ORD-1 ") == purchase
    assert purchase_get_by_ref(client_id=purchase.client_id, order_ref="ORD-2") is None
    assert purchase_get_by_ref(client_id=uuid.uuid4(), order_ref="ORD-1") is None
