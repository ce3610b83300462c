"""The trace of every process, in both modes: ordered entries and the status's allowed moves.

Writing entries bumps the process's `trace_count` with one UPDATE … RETURNING: that numbers them
(`seq`), and the UPDATE holds the process row's lock until the transaction ends, so that entries
of one process are numbered without gaps and the completion check that follows sees every settled
piece of work. A process begun inside a batch (every process is) is written when the batch ends,
its count already at its first entries: one INSERT, no bump.
"""

from __future__ import annotations

import functools
import traceback as traceback_module
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils import timezone

from common import plain_sql
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


# Entries waiting for the end of a `trace_batch` (None: outside any batch), and the process
# fields set meanwhile (the step it moved to, the client version it reached), written with the
# same UPDATE that numbers the entries.
_batch: ContextVar[list[TraceEntry] | None] = ContextVar("trace_batch", default=None)
_fields: ContextVar[dict[UUID, dict[str, Any]] | None] = ContextVar(
    "trace_batch_fields", default=None
)
# Processes begun inside the batch: each is written when the batch ends, with its entries'
# numbering and the fields set meanwhile, where an UPDATE would otherwise follow its INSERT
# (nothing outside the transaction can see it before it commits anyway).
_new: ContextVar[dict[UUID, Process] | None] = ContextVar("trace_batch_new", default=None)
# The process fields a batch may set with its bump (their columns are their names).
BUMPED_FIELDS = ("current_step", "client_version")


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
    """Append an entry to a process's trace (inside the caller's transaction; inside a
    `trace_batch`, when the batch ends)."""
    entry = TraceEntry(
        process_id=process_id,
        at=timezone.now(),
        component=component,
        name=name,
        kind=kind,
        status=status,
        attempt=attempt,
        detail=detail,
        traceback=_format(error) if error else "",
    )
    pending = _batch.get()
    if pending is None:
        _write([entry])
    else:
        pending.append(entry)
    return entry


@contextmanager
def trace_batch() -> Iterator[None]:
    """Entries recorded inside the block are written when it ends, together: one seq bump per
    process and one INSERT for them all (a step done and the next command sent are one trace
    write). Nested batches join the outermost; a block that raises writes nothing (its
    transaction is rolled back anyway)."""
    if _batch.get() is not None:
        yield
        return
    tokens = _batch.set([]), _fields.set({}), _new.set({})
    try:
        yield
        entries, fields, new = _batch.get() or [], _fields.get() or {}, _new.get() or {}
    finally:
        _batch.reset(tokens[0])
        _fields.reset(tokens[1])
        _new.reset(tokens[2])
    _write(entries, fields, new)


def process_insert(process: Process) -> None:
    """Write a new process: inside a batch, when the batch ends, numbered with its first
    entries (one INSERT, no bump); outside, now. Until then `lock_process` gives this instance
    and status moves are made on it: the row is written as they leave it."""
    pending = _new.get()
    if pending is None:
        plain_sql.insert_all([process])
        return
    process.started_at = process.last_activity_at = timezone.now()
    pending[UUID(str(process.id))] = process


def _unwritten(process_id: UUID | str) -> Process | None:
    return (_new.get() or {}).get(UUID(str(process_id)))


def current_step_set(*, process_id: UUID | str, name: str) -> None:
    """The step a process is at (shown in the admin)."""
    _process_set(process_id, "current_step", name)


def client_version_set(*, process_id: UUID | str, version: int) -> None:
    """The client version a process brought crm to: the version a shop may read its write at."""
    _process_set(process_id, "client_version", version)


def _process_set(process_id: UUID | str, field: str, value: Any) -> None:
    """Inside a batch, written with the UPDATE that numbers the process's entries; else now."""
    assert field in BUMPED_FIELDS, f"{field} is not written with the bump"
    fields = _fields.get()
    if fields is not None:
        fields.setdefault(UUID(str(process_id)), {})[field] = value
    else:
        Process.objects.filter(pk=process_id).update(**{field: value})


def _write(
    entries: list[TraceEntry],
    fields: dict[UUID, dict[str, Any]] | None = None,
    new: dict[UUID, Process] | None = None,
) -> None:
    fields = dict(fields or {})
    by_process: dict[UUID, list[TraceEntry]] = {}
    for entry in entries:
        # The id may come as a UUID or as its string (a correlation id): one process, one group.
        by_process.setdefault(UUID(str(entry.process_id)), []).append(entry)
    for process_id, process in (new or {}).items():
        own = by_process.get(process_id, [])
        for field, value in fields.pop(process_id, {}).items():
            setattr(process, field, value)
        process.trace_count = len(own)
        if own:
            process.last_activity_at = own[-1].at
        _number(own, last=len(own))
    plain_sql.insert_all(list((new or {}).values()))
    for process_id, own in by_process.items():
        if process_id not in (new or {}):
            _number(own, last=_bump(process_id, len(own), own[-1].at, fields.pop(process_id, {})))
    for process_id, values in fields.items():  # set without a trace entry (not so today)
        Process.objects.filter(pk=process_id).update(**values)
    plain_sql.insert_all(entries)
    for process_id in by_process:
        signals.trace_written.send(sender=TraceEntry, process_id=process_id)


def _number(entries: list[TraceEntry], *, last: int) -> None:
    """Number a process's new entries up to `last`, its trace count after them."""
    for offset, entry in enumerate(entries):
        entry.seq = last - len(entries) + 1 + offset


def _bump(process_id: UUID, count: int, now: datetime, values: dict[str, Any]) -> int:
    """Move the process's trace_count on by `count`, set `values` (of BUMPED_FIELDS), and return
    the count (UPDATE … RETURNING: one statement, and the row stays locked until the
    transaction ends)."""
    meta = Process._meta
    when = meta.get_field("last_activity_at").get_db_prep_value(now, connection)
    key = meta.pk.get_db_prep_value(process_id, connection)
    names = [name for name in BUMPED_FIELDS if name in values]
    also = "".join(f", {name} = %s" for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} SET trace_count = trace_count + %s, "
            f"last_activity_at = %s{also} WHERE id = %s RETURNING trace_count",
            [count, when, *(values[name] for name in names), key],
        )
        row = cursor.fetchone()
    if row is None:
        raise Process.DoesNotExist(f"no process {process_id}")
    return int(row[0])


def _format(error: BaseException) -> str:
    return "".join(traceback_module.format_exception(error))[-20_000:]


@functools.cache
def _lock_process_sql() -> str:
    table = connection.ops.quote_name(Process._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT {plain_sql.columns(Process, 'p')} FROM {table} p WHERE p.id = %s{lock}"


def lock_process(process_id: UUID) -> Process:
    """The process row, locked for the rest of the transaction (SQLite: the whole database),
    with the fields the current trace batch will write with its bump already set: what is read
    after a step or a delivery moved the client on (a webhook's `client_version`) is what this
    transaction commits. Read on every step and delivery: in plain SQL (common/plain_sql.py)."""
    unwritten = _unwritten(process_id)
    if unwritten is not None:  # begun in this batch: no other transaction can see it
        return unwritten
    row = plain_sql.fetch_one(_lock_process_sql(), [plain_sql.bound(Process, "id", process_id)])
    if row is None:
        raise Process.DoesNotExist(f"no process {process_id}")
    process = plain_sql.instance(Process, row)
    pending = _fields.get()
    for field, value in (pending or {}).get(UUID(str(process_id)), {}).items():
        setattr(process, field, value)
    return process


def process_move(*, process: Process, to: str) -> bool:
    """Move a (locked) process to a new status along the allowed arrows; False when it is there."""
    if process.status == to:
        return False
    if to not in ALLOWED_MOVES[process.status]:
        raise IllegalMove(f"a {process.status} process cannot become {to}")
    process.status = to
    process.finished_at = timezone.now() if to in FINISHED else None
    if _unwritten(process.id) is not process:  # else it is written so when its batch ends
        plain_sql.update(process, ["status", "finished_at"])
    return True
