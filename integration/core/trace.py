"""The trace of every process, in both modes: ordered entries and the status's allowed moves.

Writing an entry bumps the process's `trace_count` with an UPDATE: that is the entry's `seq`, and
the UPDATE holds the process row's lock until the transaction ends, so that entries of one process
are numbered without gaps and the completion check that follows sees every settled piece of work.
"""

from __future__ import annotations

import traceback as traceback_module
from typing import Any
from uuid import UUID

from django.db.models import F
from django.utils import timezone

from integration.core import signals
from integration.models import Process, ProcessStatus, TraceEntry, TraceKind

ALLOWED_MOVES: dict[str, set[str]] = {
    ProcessStatus.RUNNING: {"completed", "failed", "stuck", "closed"},
    ProcessStatus.STUCK: {"running", "completed", "failed", "closed"},
    ProcessStatus.FAILED: {"running", "closed"},
    ProcessStatus.COMPLETED: set(),
    ProcessStatus.CLOSED: set(),
}
FINISHED = {ProcessStatus.COMPLETED, ProcessStatus.FAILED, ProcessStatus.CLOSED}


class IllegalMove(Exception):
    pass


def trace_record(
    *,
    process_id: UUID,
    component: str,
    name: str,
    kind: TraceKind | str,
    status: str,
    attempt: int = 1,
    detail: dict[str, Any] | None = None,
    error: BaseException | None = None,
) -> TraceEntry:
    """Append an entry to a process's trace (inside the caller's transaction)."""
    now = timezone.now()
    Process.objects.filter(pk=process_id).update(
        trace_count=F("trace_count") + 1, last_activity_at=now
    )
    seq = Process.objects.values_list("trace_count", flat=True).get(pk=process_id)
    signals.trace_written.send(sender=TraceEntry, process_id=process_id)
    return TraceEntry.objects.create(
        process_id=process_id,
        seq=seq,
        at=now,
        component=component,
        name=name,
        kind=kind,
        status=status,
        attempt=attempt,
        detail=detail,
        traceback=_format(error) if error else "",
    )


def _format(error: BaseException) -> str:
    return "".join(traceback_module.format_exception(error))[-20_000:]


def lock_process(process_id: UUID) -> Process:
    """The process row, locked for the rest of the transaction (SQLite: the whole database)."""
    return Process.objects.select_for_update().get(pk=process_id)


def process_move(*, process: Process, to: str) -> bool:
    """Move a (locked) process to a new status along the allowed arrows; False when it is there."""
    if process.status == to:
        return False
    if to not in ALLOWED_MOVES[process.status]:
        raise IllegalMove(f"a {process.status} process cannot become {to}")
    process.status = to
    process.finished_at = timezone.now() if to in FINISHED else None
    process.save(update_fields=["status", "finished_at"])
    return True
