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
