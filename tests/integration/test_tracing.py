"""The trace: gap-free sequence numbers, and the arrows a process status may move along."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import product
from typing import Any

import pytest
from django.utils import timezone

from integration.core.trace import (
    ALLOWED_MOVES,
    IllegalMove,
    current_step_set,
    lock_process,
    process_insert,
    process_move,
    trace_batch,
    trace_record,
)
from integration.models import Process, ProcessKind, ProcessStatus, TraceEntry
from tests.integration.helpers import trace_of

pytestmark = pytest.mark.django_db

STATUSES = [status.value for status in ProcessStatus]
ARROWS = {
    ("running", "completed"),
    ("running", "failed"),
    ("running", "stuck"),
    ("running", "closed"),
    ("stuck", "running"),
    ("stuck", "completed"),
    ("stuck", "failed"),
    ("stuck", "closed"),
    ("failed", "running"),
    ("failed", "closed"),
}
FINISHED = {"completed", "failed", "closed"}


def a_process(status: str = ProcessStatus.RUNNING, **fields: object) -> Process:
    return Process.objects.create(
        kind=ProcessKind.CLIENT_REGISTRATION,
        mode="orchestration",
        client_id=uuid.uuid4(),
        status=status,
        **fields,
    )


def test_entries_are_numbered_from_one_without_gaps_per_process() -> None:
    # given two processes whose entries are written interleaved
    first, second = a_process(), a_process()

    # when five entries go to the first and three to the second
    for index in range(5):
        trace_record(
            process_id=first.id, component="crm", name=f"step{index}", kind="step", status="done"
        )
        if index < 3:
            trace_record(
                process_id=second.id,
                component="sales",
                name=f"step{index}",
                kind="step",
                status="done",
                attempt=2,
                detail={"n": index},
            )

    # then each process counts its own entries 1..n, and its trace_count is the last seq
    assert list(
        TraceEntry.objects.filter(process=first).order_by("seq").values_list("seq", flat=True)
    ) == [1, 2, 3, 4, 5]
    assert list(
        TraceEntry.objects.filter(process=second).order_by("seq").values_list("seq", flat=True)
    ) == [1, 2, 3]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.trace_count, second.trace_count) == (5, 3)
    assert trace_of(second.id) == [("sales", f"step{n}", "step", "done", 2) for n in range(3)]
    assert [e.detail for e in TraceEntry.objects.filter(process=second).order_by("seq")] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]


def test_an_entry_moves_the_last_activity_and_keeps_the_error_traceback() -> None:
    # given a process idle for an hour
    process = a_process()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Process.objects.filter(pk=process.id).update(last_activity_at=an_hour_ago)

    # when an entry is written with the error that caused it
    try:
        raise RuntimeError("crm is down")
    except RuntimeError as error:
        entry = trace_record(
            process_id=process.id,
            component="crm",
            name="create_client",
            kind="retry",
            status="error",
            error=error,
        )

    # then the process was active at the entry's time, and the entry keeps the traceback
    process.refresh_from_db()
    assert process.last_activity_at == entry.at
    assert entry.traceback.startswith("Traceback (most recent call last):")
    assert entry.traceback.rstrip().endswith("RuntimeError: crm is down")


def test_the_allowed_moves_are_exactly_the_contract_arrows() -> None:
    allowed = {(source, target) for source, targets in ALLOWED_MOVES.items() for target in targets}
    assert allowed == ARROWS
    assert set(ALLOWED_MOVES) == set(STATUSES)


@pytest.mark.parametrize(("source", "target"), sorted(ARROWS))
def test_a_move_along_an_arrow_sets_or_clears_finished_at(source: str, target: str) -> None:
    # given a process in `source` (finished ones carry a finished_at)
    finished_at = timezone.now() if source in FINISHED else None
    process = a_process(source, finished_at=finished_at)

    # when it moves to `target`
    moved = process_move(process=process, to=target)

    # then the row holds the new status, finished_at only when it is finished
    process.refresh_from_db()
    assert moved is True
    assert process.status == target
    assert (process.finished_at is not None) == (target in FINISHED)


@pytest.mark.parametrize(
    ("source", "target"),
    sorted((s, t) for s, t in product(STATUSES, STATUSES) if s != t and (s, t) not in ARROWS),
)
def test_a_move_off_the_arrows_is_illegal_and_changes_nothing(source: str, target: str) -> None:
    finished_at = timezone.now() if source in FINISHED else None
    process = a_process(source, finished_at=finished_at)

    with pytest.raises(IllegalMove) as raised:
        process_move(process=process, to=target)

    assert str(raised.value) == f"a {source} process cannot become {target}"
    process.refresh_from_db()
    assert (process.status, process.finished_at) == (source, finished_at)


@pytest.mark.parametrize("status", STATUSES)
def test_a_move_to_the_same_status_is_no_move(status: str) -> None:
    finished_at = timezone.now() if status in FINISHED else None
    process = a_process(status, finished_at=finished_at)

    assert process_move(process=process, to=status) is False

    process.refresh_from_db()
    assert (process.status, process.finished_at) == (status, finished_at)


def test_fields_set_in_a_batch_go_in_with_its_bump_and_a_lock_inside_it_reads_them() -> None:
    from django.db import transaction

    from integration.core.trace import (
        client_version_set,
        current_step_set,
        lock_process,
        trace_batch,
    )

    process = a_process(client_version=1)
    with transaction.atomic(), trace_batch():
        client_version_set(process_id=process.id, version=3)
        current_step_set(process_id=str(process.id), name="open_account")
        trace_record(
            process_id=process.id, component="crm", name="create_client", kind="step", status="done"
        )
        # what this transaction will commit, not the row as it stands before the bump
        locked = lock_process(process.id)
        assert (locked.client_version, locked.current_step) == (3, "open_account")
        assert Process.objects.get(pk=process.id).client_version == 1

    stored = Process.objects.get(pk=process.id)
    assert (stored.client_version, stored.current_step, stored.trace_count) == (
        3,
        "open_account",
        1,
    )


def test_a_field_set_outside_a_batch_is_written_at_once() -> None:
    from integration.core.trace import client_version_set

    process = a_process(client_version=1)
    client_version_set(process_id=process.id, version=2)
    assert Process.objects.get(pk=process.id).client_version == 2


def test_locking_a_process_that_is_not_there_says_so() -> None:
    from integration.core.trace import lock_process

    with pytest.raises(Process.DoesNotExist):
        lock_process(uuid.uuid4())


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_locked_process_stays_locked_until_the_transaction_ends() -> None:
    import psycopg
    from django.db import transaction

    from integration.core.trace import lock_process
    from tests.support.processes import database_url

    process = Process.objects.create(
        kind=ProcessKind.CLIENT_REGISTRATION, mode="choreography", client_id=uuid.uuid4(), input={}
    )
    lock = "SELECT 1 FROM integration_process WHERE id = %s FOR UPDATE NOWAIT"

    with psycopg.connect(database_url(), autocommit=True) as other:
        with transaction.atomic():
            locked = lock_process(process.id)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(lock, [process.id])
        assert other.execute(lock, [process.id]).fetchone() == (1,)

    assert (locked.pk, locked.kind, locked.status, locked.input) == (
        process.pk,
        "client_registration",
        "running",
        {},
    )


# --- a process begun inside a batch ---------------------------------------------------------------


def a_new_process() -> Process:
    return Process(
        kind=ProcessKind.CLIENT_REGISTRATION, mode="orchestration", client_id=uuid.uuid4()
    )


def test_a_process_begun_in_a_batch_is_written_at_its_end_numbered_with_its_entries(
    django_assert_num_queries: Any,
) -> None:
    process = a_new_process()

    # the check inside, then the process and its entries: no bump
    with django_assert_num_queries(3), trace_batch():
        process_insert(process)
        for name in ("started", "create_client"):
            trace_record(
                process_id=process.id,
                component="integration",
                name=name,
                kind="action",
                status="done",
            )
        current_step_set(process_id=process.id, name="create_client")
        assert not Process.objects.filter(pk=process.id).exists()

    written = Process.objects.get(pk=process.id)
    entries = list(TraceEntry.objects.filter(process=process).order_by("seq"))
    assert (written.trace_count, written.current_step, written.status) == (
        2,
        "create_client",
        "running",
    )
    assert [(entry.seq, entry.name) for entry in entries] == [(1, "started"), (2, "create_client")]
    # it keeps the moment it began: not later than its first entry
    assert written.started_at <= entries[0].at
    assert written.last_activity_at == entries[-1].at


def test_a_process_begun_and_finished_in_one_batch_is_written_finished() -> None:
    process = a_new_process()

    with trace_batch():
        process_insert(process)
        trace_record(
            process_id=process.id, component="integration", name="x", kind="action", status="s"
        )
        assert lock_process(process.id) is process  # nothing to lock: no one else can see it
        assert process_move(process=process, to="completed") is True

    written = Process.objects.get(pk=process.id)
    assert (written.status, written.trace_count) == ("completed", 1)
    assert written.finished_at == process.finished_at is not None


def test_a_process_begun_outside_a_batch_is_written_at_once() -> None:
    process = a_new_process()

    process_insert(process)

    assert Process.objects.filter(pk=process.id, trace_count=0).exists()
