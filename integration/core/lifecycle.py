"""A process's life: finishing, resuming after a failure, being marked stuck, being closed.

Every move goes along the arrows of shop-api.md, is written to the trace, and is announced after
commit to whoever listens (the initiator's webhook, live pages).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from common import correlation
from common.errors import ApplicationError
from integration.core import signals
from integration.core.trace import lock_process, process_move, trace_record
from integration.models import Process, ProcessStatus, Step, StepStatus, TraceKind

ORCHESTRATOR = "integration"


def _announce(process: Process) -> None:
    signals.process_status_changed.send(sender=Process, process=process, status=process.status)


def process_started(*, process: Process) -> None:
    """The first entry of every process's trace, in either mode."""
    trace_record(
        process_id=process.id,
        component=ORCHESTRATOR,
        name=process.kind,
        kind=TraceKind.ACTION,
        status="started",
        detail={"mode": process.mode},
    )


def process_finish(*, process: Process, status: str, detail: dict[str, Any] | None = None) -> None:
    """Completed or failed (the process row is locked by the caller)."""
    if not process_move(process=process, to=status):
        return
    trace_record(
        process_id=process.id,
        component=ORCHESTRATOR,
        name=process.kind,
        kind=TraceKind.ACTION,
        status=status,
        detail=detail,
    )
    _announce(process)


def process_resume(*, process: Process, by: str, detail: dict[str, Any]) -> None:
    """A person retries a failed process, or work reaches a stuck one again."""
    process_move(process=process, to=ProcessStatus.RUNNING)
    trace_record(
        process_id=process.id,
        component=ORCHESTRATOR,
        name=process.kind,
        kind=TraceKind.ACTION,
        status="running",
        detail={**detail, "by": by},
    )


def process_wake(*, process: Process) -> None:
    """Work reached a stuck process: it is running again."""
    if process.status == ProcessStatus.STUCK:
        process_resume(process=process, by=ORCHESTRATOR, detail={"reason": "activity"})


def process_mark_stuck(*, process: Process, idle_seconds: float) -> bool:
    if not process_move(process=process, to=ProcessStatus.STUCK):
        return False
    trace_record(
        process_id=process.id,
        component=ORCHESTRATOR,
        name=process.kind,
        kind=TraceKind.FAILURE,
        status="stuck",
        detail={"idle_seconds": round(idle_seconds, 1)},
    )
    _announce(process)
    return True


def process_close(*, process_id: UUID, reason: str, by: str) -> Process:
    """A person ends a process that will not finish on its own: an audited end event."""
    reason = reason.strip()
    if not reason:
        raise ApplicationError("a reason is required", errors={"reason": ["Give a reason."]})
    with correlation.bound(process_id), transaction.atomic():
        process = lock_process(process_id)
        if process.status in (ProcessStatus.COMPLETED, ProcessStatus.CLOSED):
            raise ApplicationError(f"a {process.status} process cannot be closed")
        Step.objects.filter(
            process=process,
            status__in=(StepStatus.PENDING, StepStatus.SENT, StepStatus.WAITING, StepStatus.HELD),
        ).update(status=StepStatus.SKIPPED, next_attempt_at=None)
        process_move(process=process, to=ProcessStatus.CLOSED)
        trace_record(
            process_id=process.id,
            component=ORCHESTRATOR,
            name=process.kind,
            kind=TraceKind.ACTION,
            status="closed",
            detail={"reason": reason[:500], "by": by},
        )
        _announce(process)
        return process
