"""Counting the runs of a step or delivery before it runs, for messages that kill their worker.

The count is committed (autocommit, no lock held) before the work starts: a run that kills its
worker process leaves no other trace, and its message comes back (acks late). A message whose
runs reached WORKER_CRASH_LIMIT is not run again: its caller makes it dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import F, Model


@dataclass(frozen=True)
class Run:
    """A run counted; the process its message belongs to (None for an event outside one)."""

    process_id: UUID | None


def run_count(model: type[Model], *, pk: UUID, open_statuses: Sequence[str]) -> Run | None:
    """Count a run of an open row below the crash limit, in one UPDATE … RETURNING; None when
    the row is not open (or gone), or its runs are spent."""
    meta = model._meta
    key = meta.pk.get_db_prep_value(pk, connection)
    statuses = ", ".join(["%s"] * len(open_statuses))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} SET runs = runs + 1 WHERE id = %s AND runs < %s "
            f"AND status IN ({statuses}) RETURNING process_id",
            [key, settings.WORKER_CRASH_LIMIT, *open_statuses],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Run(None if row[0] is None else UUID(str(row[0])))


def run_uncount(model: type[Model], *, pk: UUID) -> None:
    """A counted run ended without doing the work (another worker has it in flight, it is held,
    or it was done already): it takes its count back, so that only runs that died with their
    worker add up to the limit."""
    model._default_manager.filter(pk=pk, runs__gt=0).update(runs=F("runs") - 1)
