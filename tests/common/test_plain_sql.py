from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from common import plain_sql

NOON = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "stored",
    [
        NOON,
        NOON.replace(tzinfo=None),  # SQLite keeps UTC without an offset
        "2025-04-01 12:00:00",
        "2025-04-01T12:00:00+00:00",
        NOON.astimezone(timezone(timedelta(hours=2))),
    ],
)
def test_a_stored_timestamp_reads_as_the_same_aware_moment(stored: datetime | str) -> None:
    read = plain_sql.moment(stored)
    assert (read, read.tzinfo is not None) == (NOON, True)


def test_text_that_is_no_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="not a timestamp: 'soon'"):
        plain_sql.moment("soon")


def test_a_uuid_reads_back_from_its_text_or_itself() -> None:
    value = uuid.uuid4()
    assert plain_sql.uuid_of(value) is value
    assert plain_sql.uuid_of(value.hex) == value == plain_sql.uuid_of(str(value))


@pytest.mark.django_db
def test_a_value_is_bound_as_its_field_stores_it() -> None:
    from django.db import connection

    from sales.models import CustomerReplica

    value = uuid.uuid4()
    expected = value if connection.vendor == "postgresql" else value.hex
    assert plain_sql.bound(CustomerReplica, "client_id", value) == expected


@pytest.mark.django_db
def test_an_instance_goes_in_once_and_a_taken_key_leaves_the_transaction_usable() -> None:
    from decimal import Decimal

    from django.db import transaction

    from sales.models import Purchase

    client_id = uuid.uuid4()
    first = Purchase(
        client_id=client_id,
        order_ref="A-1",
        total=Decimal("12.50"),
        currency="EUR",
        purchased_at=NOON,
    )
    again = Purchase(
        client_id=client_id,
        order_ref="A-1",
        total=Decimal("99.00"),
        currency="GBP",
        purchased_at=NOON,
    )

    with transaction.atomic():
        assert plain_sql.insert_unless_taken(first) is True
        assert plain_sql.insert_unless_taken(again) is False
        # no savepoint was needed: the transaction goes on after the refusal
        stored = Purchase.objects.get(client_id=client_id, order_ref="A-1")

    assert (stored.id, stored.total, stored.currency) == (first.id, Decimal("12.50"), "EUR")
    assert Purchase.objects.filter(client_id=client_id).count() == 1
    assert (first._state.adding, again._state.adding) == (False, True)


@pytest.mark.django_db
def test_a_generated_column_is_left_to_the_database() -> None:
    from django.utils import timezone

    from crm.models import Client

    client = Client(
        id=uuid.uuid4(),
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        company="Engines",
        registered_at=timezone.now(),
        updated_at=timezone.now(),
    )

    assert plain_sql.insert_unless_taken(client) is True
    assert Client.objects.get(id=client.id).search_text == "Ada Lovelace ada@example.com Engines"
