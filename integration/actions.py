"""What operators do, in one place: every action a person takes on the integration layer, each
with its audit row written in the same transaction as the change.

The admin and the management commands call these. They sit beside the gateway, above the
orchestrator and the choreography whose machinery they drive (the process core below cannot call
up into them).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction

from integration import bus
from integration.choreography import reconcile, replicas, switches
from integration.core import components, lifecycle, modes
from integration.models import (
    AuditEntry,
    ComponentState,
    Delivery,
    IntegrationMode,
    Process,
    Step,
)
from integration.orchestrator import engine


def _audit(*, by: str, action: str, target: str, detail: dict[str, Any]) -> None:
    AuditEntry.objects.create(actor=by or "system", action=action, target=target, detail=detail)


def step_retry(*, step_id: UUID, by: str) -> Step:
    """Run a failed step again, with fresh attempts: its process runs on from there."""
    with transaction.atomic():
        step = engine.step_retry(step_id=step_id, by=by)
        _audit(
            by=by,
            action="step.retry",
            target=str(step.id),
            detail={"process": str(step.process_id), "step": step.name},
        )
    return step


def process_close(*, process_id: UUID, reason: str, by: str) -> Process:
    """End a process that will not finish on its own, with the reason why."""
    with transaction.atomic():
        process = lifecycle.process_close(process_id=process_id, reason=reason, by=by)
        _audit(
            by=by,
            action="process.close",
            target=str(process.id),
            detail={"reason": reason.strip()[:500], "kind": process.kind},
        )
    return process


def delivery_retry(*, delivery_id: UUID, by: str) -> Delivery:
    """Send a dead delivery again, with fresh attempts; its failed process runs again."""
    with transaction.atomic():
        delivery = bus.delivery_retry(delivery_id=delivery_id, by=by)
        _audit(
            by=by,
            action="delivery.retry",
            target=str(delivery.id),
            detail={"listener": delivery.listener},
        )
    return delivery


def event_replay(*, event_id: UUID, listener: str, by: str) -> Delivery:
    """Deliver an event once more to one listener."""
    with transaction.atomic():
        delivery = bus.event_replay(event_id=event_id, listener=listener, by=by)
        _audit(by=by, action="event.replay", target=str(event_id), detail={"listener": listener})
    return delivery


def listener_set(*, name: str, state: str, by: str) -> list[str]:
    """Switch one listener or a whole component; returns the listeners switched."""
    with transaction.atomic():
        names = switches.listener_set(name=name, state=state, by=by)
        _audit(by=by, action=f"listeners.{state}", target=name, detail={"listeners": names})
    return names


def component_set(*, name: str, state: str, by: str) -> int:
    """Pause a component for maintenance, or resume it; on resume its held commands and
    deliveries go out in order. Returns how many were released."""
    with transaction.atomic():
        before = components.component_switch(component=name, state=state, by=by)
        released = 0
        if before == ComponentState.PAUSED and state == ComponentState.RUNNING:
            released = engine.release_held(component=name) + bus.release_component(component=name)
        _audit(
            by=by,
            action=f"components.{state}",
            target=name,
            detail={"from": before, "released": released},
        )
    return released


def mode_switch(*, mode: str, changed_by: str = "") -> str:
    """Switch the mode for processes that start from now on; in-flight ones keep theirs.
    Switching to choreography first fills the replicas from their owners (audited too)."""
    if mode == IntegrationMode.CHOREOGRAPHY and modes.mode_get() != mode:
        counts = replicas.replicas_fill()
        _audit(by=changed_by, action="replicas.fill", target="", detail=counts)
    with transaction.atomic():
        before = modes.mode_get()
        modes.mode_set(mode=mode, changed_by=changed_by)
        if before != mode:
            _audit(by=changed_by, action="mode.switch", target=mode, detail={"from": before})
    return mode


def replicas_repair(*, by: str) -> reconcile.Reconciliation:
    """Compare every replica with its owner and send each difference the owner's current state,
    to the lagging listener alone (the deliveries go out after commit)."""
    found = reconcile.replicas_compare()
    with transaction.atomic():
        repaired = reconcile.replicas_repair(differences=found.differences)
        done = dataclasses.replace(found, repaired=repaired)
        reconcile.reconcile_record(reconciliation=done, by=by)
        _audit(
            by=by,
            action="replicas.repair",
            target="",
            detail={"differences": found.counts(), "repaired": repaired},
        )
    return done


def mode_apply_environment() -> str:
    """INTEGRATION_MODE, when set, becomes the stored mode as a web server starts."""
    if settings.INTEGRATION_MODE:
        return mode_switch(mode=settings.INTEGRATION_MODE, changed_by="INTEGRATION_MODE")
    return modes.mode_get()
