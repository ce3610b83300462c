"""What operators do to processes, each with its audit row written in the same transaction.

Retrying a dead delivery, replaying an event, switching a listener or the mode are audited where
they are done (integration/bus.py, listeners.py, modes.py); retrying a step and closing a process
are audited here.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from integration import lifecycle
from integration.models import AuditEntry, Process, Step
from integration.orchestrator import engine


def step_retry(*, step_id: UUID, by: str) -> Step:
    """Run a failed step again, with fresh attempts: its process runs on from there."""
    with transaction.atomic():
        step = engine.step_retry(step_id=step_id, by=by)
        AuditEntry.objects.create(
            actor=by,
            action="step.retry",
            target=str(step.id),
            detail={"process": str(step.process_id), "step": step.name},
        )
    return step


def process_close(*, process_id: UUID, reason: str, by: str) -> Process:
    """End a process that will not finish on its own, with the reason why."""
    with transaction.atomic():
        process = lifecycle.process_close(process_id=process_id, reason=reason, by=by)
        AuditEntry.objects.create(
            actor=by,
            action="process.close",
            target=str(process.id),
            detail={"reason": reason.strip()[:500], "kind": process.kind},
        )
    return process
