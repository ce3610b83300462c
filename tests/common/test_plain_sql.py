from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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


@pytest.mark.django_db
def test_a_row_read_in_plain_sql_is_the_instance_the_orm_reads() -> None:
    from django.forms.models import model_to_dict

    from integration.models import Process, Step

    process = Process.objects.create(
        kind="client_registration", mode="orchestration", client_id=uuid.uuid4(), input={"a": 1}
    )
    Step.objects.create(
        process=process,
        position=1,
        name="create_client",
        component="crm",
        status="done",
        result={"version": 3, "nested": {"ok": True}},
        done_at=NOON,
    )
    orm = Step.objects.get(process=process)

    row = plain_sql.fetch_one(
        f"SELECT {plain_sql.columns(Step, 's')} FROM integration_step s WHERE s.id = %s",
        [plain_sql.bound(Step, "id", orm.id)],
    )
    assert row is not None
    read = plain_sql.instance(Step, row)

    assert model_to_dict(read) == model_to_dict(orm)
    assert (read.pk, read.process_id, read.result, read.done_at) == (
        orm.pk,
        process.pk,
        {"version": 3, "nested": {"ok": True}},
        NOON,
    )
    assert read._state.adding is False


def test_an_instance_needs_a_value_for_every_column() -> None:
    from integration.models import Step

    with pytest.raises(ValueError, match="Step has 15 columns, not 2"):
        plain_sql.instance(Step, ["a", "b"])


@pytest.mark.django_db
def test_instances_go_in_with_one_insert_per_chunk_of_rows(
    django_assert_num_queries: Any,
) -> None:
    from integration.models import Process, TraceEntry

    process = Process.objects.create(
        kind="client_registration", mode="orchestration", client_id=uuid.uuid4(), input={}
    )
    entries = [
        TraceEntry(
            process=process,
            seq=seq,
            at=NOON + timedelta(seconds=seq),
            component="crm",
            name=f"step-{seq}",
            kind="step",
            status="done",
            detail={"n": seq} if seq % 2 else None,
        )
        for seq in range(1, 6)
    ]

    with django_assert_num_queries(3):
        plain_sql.insert_all(entries, rows_per_statement=2)

    written = TraceEntry.objects.filter(process=process).order_by("seq")
    assert [(e.seq, e.at, e.name, e.detail, e.attempt) for e in written] == [
        (seq, NOON + timedelta(seconds=seq), f"step-{seq}", {"n": seq} if seq % 2 else None, 1)
        for seq in range(1, 6)
    ]


def test_no_instances_is_no_statement() -> None:
    plain_sql.insert_all([])  # no database access: this test may not touch one


@pytest.mark.django_db
def test_instances_with_their_own_keys_are_saved_rows_after_insert_all() -> None:
    from integration.models import EventRecord

    records = [EventRecord(name="ClientRegistered", source="integration") for _ in range(2)]

    plain_sql.insert_all(records)

    assert [r._state.adding for r in records] == [False, False]
    assert set(EventRecord.objects.values_list("id", flat=True)) == {r.id for r in records}
    records[0].source = "crm"
    records[0].save()  # an UPDATE of the row, not a second INSERT
    assert EventRecord.objects.get(pk=records[0].pk).source == "crm"


@pytest.mark.django_db
def test_an_update_writes_the_named_fields_only_in_one_statement(
    django_assert_num_queries: Any,
) -> None:
    from integration.models import Process, Step

    process = Process.objects.create(
        kind="client_registration", mode="orchestration", client_id=uuid.uuid4(), input={}
    )
    step = Step.objects.create(
        process=process, position=1, name="create_client", component="crm", status="sent"
    )
    step.status = "done"
    step.result = {"version": 2, "nested": {"ok": True}}
    step.done_at = NOON
    step.last_error = "not written: not named"

    with django_assert_num_queries(1):
        plain_sql.update(step, ["status", "result", "done_at"])

    stored = Step.objects.get(pk=step.pk)
    assert (stored.status, stored.result, stored.done_at, stored.last_error) == (
        "done",
        {"version": 2, "nested": {"ok": True}},
        NOON,
        "",
    )


@pytest.mark.django_db
def test_an_update_moves_an_auto_now_field_it_names_on() -> None:
    from correspondence.models import Template

    Template.objects.filter(pk="welcome").update(updated_at=NOON)  # seeded by a migration
    template = Template.objects.get(pk="welcome")
    template.subject = "Welcome"

    plain_sql.update(template, ["subject", "updated_at"])

    stored = Template.objects.get(pk=template.pk)
    assert stored.subject == "Welcome"
    assert stored.updated_at > NOON


@pytest.mark.django_db
def test_an_update_of_a_row_that_is_gone_fails_as_save_does() -> None:
    from django.db import DatabaseError

    from integration.models import EventRecord

    record = EventRecord.objects.create(name="ClientRegistered", source="integration")
    EventRecord.objects.filter(pk=record.pk).delete()
    record.source = "crm"

    with pytest.raises(DatabaseError, match=f"EventRecord {record.pk} is gone"):
        plain_sql.update(record, ["source"])
    assert not EventRecord.objects.exists()


@pytest.mark.django_db
def test_a_locked_read_is_the_instance_the_orm_reads_and_a_missing_row_does_not_exist() -> None:
    from django.db import transaction
    from django.forms.models import model_to_dict

    from integration.models import EventRecord

    record = EventRecord.objects.create(
        name="ClientRegistered", source="integration", payload={"email": "ada@example.com"}
    )
    with transaction.atomic():
        read = plain_sql.locked(EventRecord, record.pk)
    assert model_to_dict(read) == model_to_dict(EventRecord.objects.get(pk=record.pk))
    assert (read.pk, read.payload, read._state.adding) == (
        record.pk,
        {"email": "ada@example.com"},
        False,
    )

    missing = uuid.uuid4()
    with pytest.raises(EventRecord.DoesNotExist, match=f"no EventRecord {missing}"):
        plain_sql.locked(EventRecord, missing)


@pytest.mark.django_db
def test_a_copy_goes_in_then_advances_only_to_a_newer_version_one_statement_each(
    django_assert_num_queries: Any,
) -> None:
    from correspondence.models import Recipient

    client_id = uuid.uuid4()

    def copy(version: int, email: str) -> Recipient:
        return Recipient(
            client_id=client_id, email=email, first_name="Ada", client_version=version, as_of=NOON
        )

    def stored() -> tuple[int, str]:
        recipient = Recipient.objects.get(client_id=client_id)
        return recipient.client_version, recipient.email

    with django_assert_num_queries(1):
        assert plain_sql.insert_or_advance(copy(2, "two@example.com")) is True
    assert stored() == (2, "two@example.com")

    for older_or_same in (1, 2):
        with django_assert_num_queries(1):
            assert plain_sql.insert_or_advance(copy(older_or_same, "old@example.com")) is False
        assert stored() == (2, "two@example.com")

    with django_assert_num_queries(1):
        assert plain_sql.insert_or_advance(copy(5, "five@example.com")) is True
    assert stored() == (5, "five@example.com")
    assert Recipient.objects.count() == 1
