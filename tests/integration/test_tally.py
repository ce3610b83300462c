"""The process counts the database keeps (ProcessTally, triggers of migration 0010) match the
processes through every kind of write, and folding them changes no figure."""

from __future__ import annotations

import importlib
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from integration.core import tally
from integration.models import (
    TALLY_DURATION_BUCKETS,
    Process,
    ProcessKind,
    ProcessStatus,
    ProcessTally,
)

pytestmark = pytest.mark.django_db

REGISTRATION = ProcessKind.CLIENT_REGISTRATION


def a_process(mode: str = "orchestration", **fields: object) -> Process:
    return Process.objects.create(kind=REGISTRATION, mode=mode, client_id=uuid.uuid4(), **fields)


def counted() -> dict[tuple[str, str, str], int]:
    """What counting every process says."""
    return dict(Counter(Process.objects.values_list("kind", "mode", "status")))


def finish(process: Process, status: str, seconds: float) -> None:
    Process.objects.filter(pk=process.pk).update(
        status=status, finished_at=process.started_at + timedelta(seconds=seconds)
    )


def test_the_counts_follow_inserts_updates_bulk_updates_and_deletes() -> None:
    # given processes written every way the code writes them
    first, second = a_process(), a_process()
    a_process(mode="choreography")
    finish(first, ProcessStatus.COMPLETED, 0.2)
    second.status = ProcessStatus.STUCK
    second.save(update_fields=["status"])
    Process.objects.filter(mode="choreography").update(status=ProcessStatus.FAILED)
    a_process().delete()
    Process.objects.filter(pk=second.pk).update(current_step="unrelated")  # not tallied

    # then the kept counts say what counting every process says
    expected = {
        (REGISTRATION, "orchestration", "completed"): 1,
        (REGISTRATION, "orchestration", "stuck"): 1,
        (REGISTRATION, "choreography", "failed"): 1,
    }
    assert counted() == expected
    assert tally.process_counts() == expected
    assert tally.process_total() == 3
    assert tally.process_total(mode="orchestration") == 2
    assert tally.process_total(mode="choreography", status="running") == 0


def test_folding_leaves_one_row_per_key_and_every_figure_as_it_was() -> None:
    for _ in range(3):
        a_process()
    finish(a_process(), ProcessStatus.COMPLETED, 3.0)
    before = (tally.process_counts(), tally.durations())
    rows_before = ProcessTally.objects.count()

    folded = tally.tally_fold()

    assert folded == rows_before
    keys = set(ProcessTally.objects.values_list("kind", "mode", "status", "bucket"))
    assert ProcessTally.objects.count() == len(keys) == 2
    assert (tally.process_counts(), tally.durations()) == before
    assert tally.tally_fold() == 2  # folding again reads the two rows and keeps them


def test_a_retried_process_takes_its_old_duration_out_of_the_histogram() -> None:
    # given a process that failed after 0.07 s, was retried, then completed after 4 s
    process = a_process()
    finish(process, ProcessStatus.FAILED, 0.07)
    Process.objects.filter(pk=process.pk).update(status=ProcessStatus.RUNNING, finished_at=None)
    finish(process, ProcessStatus.COMPLETED, 4.0)
    finish(a_process(), ProcessStatus.CLOSED, 0.04)

    histogram = tally.durations()[(REGISTRATION, "orchestration")]

    # then only the durations it finished with count: 0.04 s and 4 s
    assert histogram.count == 2
    assert histogram.seconds == pytest.approx(4.04, abs=0.002)  # SQLite keeps milliseconds
    under = dict(zip(TALLY_DURATION_BUCKETS, histogram.under, strict=True))
    assert (under[0.05], under[0.1], under[2.5], under[5], under[3600]) == (1, 1, 1, 2, 2)


def test_a_process_longer_than_the_last_bound_counts_only_in_the_total() -> None:
    finish(a_process(), ProcessStatus.COMPLETED, 7200.0)

    histogram = tally.durations()[(REGISTRATION, "orchestration")]

    assert (histogram.count, histogram.under[-1]) == (1, 0)


def test_the_triggers_hold_the_same_bounds_as_the_model() -> None:
    migration = importlib.import_module("integration.migrations.0010_process_tally")
    assert migration.BUCKETS == TALLY_DURATION_BUCKETS


def test_the_migration_fills_the_counts_from_the_processes_already_there() -> None:
    # given processes, and the counts lost (as before the migration)
    finish(a_process(), ProcessStatus.COMPLETED, 0.3)
    a_process(mode="choreography")
    ProcessTally.objects.all().delete()

    # when the migration's filling statement runs
    migration = importlib.import_module("integration.migrations.0010_process_tally")
    row = "integration_process"
    vendor = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO integration_processtally ({migration.COLUMNS}) "
            f"SELECT kind, mode, status, {migration.bucket_sql(vendor, row)}, COUNT(*), "
            f"COALESCE(SUM({migration.seconds_sql(vendor, row)}), 0) FROM {row} "
            f"GROUP BY kind, mode, status, {migration.bucket_sql(vendor, row)}"
        )

    # then the counts are whole again
    assert tally.process_counts() == counted()
    assert tally.durations()[(REGISTRATION, "orchestration")].count == 1
