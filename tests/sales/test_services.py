from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from common.errors import ValidationFailed
from sales.models import AccountStatus, CustomerAccount, Purchase
from sales.services import account_open, client_sales_erase, purchase_record
from tests.sales.factories import CustomerAccountFactory, PurchaseFactory

pytestmark = pytest.mark.django_db

PURCHASED_AT = datetime(2025, 4, 1, 15, 0, tzinfo=UTC)


# --- account_open --------------------------------------------------------------------------------


def test_account_open_opens_an_account() -> None:
    # given a client id
    client_id = uuid.uuid4()

    # when its account is opened
    account = account_open(client_id=client_id)

    # then one open account exists for it
    stored = CustomerAccount.objects.get()
    assert stored == account
    assert (stored.client_id, stored.status) == (client_id, AccountStatus.OPEN)
    assert stored.opened_at.tzinfo is not None


def test_account_open_is_idempotent() -> None:
    # given an opened account
    client_id = uuid.uuid4()
    first = account_open(client_id=client_id)

    # when it is opened again
    second = account_open(client_id=client_id)

    # then the same account is returned and one row exists
    assert second.id == first.id
    assert second.opened_at == first.opened_at
    assert CustomerAccount.objects.count() == 1


def test_account_open_returns_a_closed_account_as_it_is() -> None:
    # given a closed account
    closed = CustomerAccountFactory.create(status=AccountStatus.CLOSED)

    # when it is opened again
    account = account_open(client_id=closed.client_id)

    # then it is returned unchanged
    assert (account.id, account.status) == (closed.id, AccountStatus.CLOSED)


# --- purchase_record -----------------------------------------------------------------------------


def test_purchase_record_stores_the_purchase() -> None:
    # given a client id
    client_id = uuid.uuid4()

    # when an order is recorded with untidy input
    purchase, created = purchase_record(
        client_id=client_id,
        order_ref=" ORD-1 ",
        total=Decimal("10.5"),
        currency="eur",
        purchased_at=PURCHASED_AT,
    )

    # then one row holds it, normalised
    assert created is True
    stored = Purchase.objects.get()
    assert stored == purchase
    assert (stored.client_id, stored.order_ref) == (client_id, "ORD-1")
    assert (stored.total, stored.currency) == (Decimal("10.50"), "EUR")
    assert stored.purchased_at == PURCHASED_AT
    assert stored.recorded_at.tzinfo is not None


def test_purchase_record_defaults_the_purchase_time_to_now() -> None:
    before = datetime.now(UTC)
    purchase, _ = purchase_record(
        client_id=uuid.uuid4(), order_ref="ORD-1", total=Decimal("1.00"), currency="EUR"
    )
    assert before <= purchase.purchased_at <= datetime.now(UTC)


def test_purchase_record_is_idempotent_on_the_order_ref() -> None:
    # given a recorded order
    client_id = uuid.uuid4()
    first, _ = purchase_record(
        client_id=client_id, order_ref="ORD-1", total=Decimal("10.00"), currency="EUR"
    )

    # when the same order is recorded again, even with another total
    second, created = purchase_record(
        client_id=client_id, order_ref="ORD-1", total=Decimal("99.00"), currency="USD"
    )

    # then the first record is returned, not created, and kept as it was
    assert created is False
    assert second.id == first.id
    assert (second.total, second.currency) == (Decimal("10.00"), "EUR")
    assert Purchase.objects.count() == 1


def test_purchase_record_order_refs_are_per_client() -> None:
    # when two clients have an order with the same reference
    _, first_created = purchase_record(
        client_id=uuid.uuid4(), order_ref="ORD-1", total=Decimal("1.00"), currency="EUR"
    )
    _, second_created = purchase_record(
        client_id=uuid.uuid4(), order_ref="ORD-1", total=Decimal("1.00"), currency="EUR"
    )

    # then both are recorded
    assert (first_created, second_created) == (True, True)
    assert Purchase.objects.count() == 2


@pytest.mark.parametrize(
    ("order_ref", "total", "currency", "errors"),
    [
        ("ORD-1", Decimal("0.00"), "EUR", {"total": ["Must be greater than 0."]}),
        ("ORD-1", Decimal("-5"), "EUR", {"total": ["Must be greater than 0."]}),
        ("ORD-1", Decimal("1.999"), "EUR", {"total": ["Use at most 2 decimal places."]}),
        ("ORD-1", Decimal("NaN"), "EUR", {"total": ["Enter a decimal amount."]}),
        (
            "ORD-1",
            Decimal("10000000000.00"),
            "EUR",
            {"total": ["Must be less than 10,000,000,000."]},
        ),
        (
            "ORD-1",
            Decimal("1.00"),
            "EURO",
            {"currency": ["Enter a three-letter ISO 4217 currency code."]},
        ),
        (" ", Decimal("1.00"), "EUR", {"order_ref": ["This field cannot be blank."]}),
        (
            "X" * 65,
            Decimal("1.00"),
            "EUR",
            {"order_ref": ["Ensure this value has at most 64 characters (it has 65)."]},
        ),
    ],
)
def test_purchase_record_validates_its_input(
    order_ref: str, total: Decimal, currency: str, errors: dict[str, list[str]]
) -> None:
    # when the input is invalid
    with pytest.raises(ValidationFailed) as raised:
        purchase_record(client_id=uuid.uuid4(), order_ref=order_ref, total=total, currency=currency)

    # then the field is named and nothing is recorded
    assert raised.value.errors == errors
    assert Purchase.objects.count() == 0


# --- client_sales_erase --------------------------------------------------------------------------


def test_client_sales_erase_deletes_the_account_and_purchases() -> None:
    # given a client with an account and two purchases, and another client
    client_id = uuid.uuid4()
    CustomerAccountFactory.create(client_id=client_id)
    PurchaseFactory.create_batch(2, client_id=client_id)
    other_account = CustomerAccountFactory.create()
    other_purchase = PurchaseFactory.create(client_id=other_account.client_id)

    # when the client is erased from sales
    client_sales_erase(client_id=client_id)

    # then only the other client's rows remain
    assert list(CustomerAccount.objects.values_list("id", flat=True)) == [other_account.id]
    assert list(Purchase.objects.values_list("id", flat=True)) == [other_purchase.id]


def test_client_sales_erase_of_an_unknown_client_does_nothing() -> None:
    # given a client
    account = CustomerAccountFactory.create()

    # when another id is erased, twice
    client_sales_erase(client_id=uuid.uuid4())
    client_sales_erase(client_id=uuid.uuid4())

    # then nothing changes
    assert list(CustomerAccount.objects.values_list("id", flat=True)) == [account.id]
