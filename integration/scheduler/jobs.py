"""The integration layer's periodic jobs (the runner: integration/scheduler/runner.py; the shop
API registers its own in shop_api/jobs.py)."""

from __future__ import annotations

from django.conf import settings

from integration import bus
from integration.choreography import reconcile
from integration.core import monitoring, tally
from integration.orchestrator import engine
from integration.scheduler.runner import job


@job("orchestrator.sweep_steps", every=0.5)
def sweep_steps() -> int:
    """Send unpublished commands, retries that are due, and resend unanswered ones."""
    return engine.steps_sweep()


@job("bus.sweep_deliveries", every=0.5)
def sweep_deliveries() -> int:
    """Send unpublished deliveries, retries that are due, and resend unacknowledged ones."""
    return bus.deliveries_sweep()


@job("monitor.stuck_processes", every=5)
def mark_stuck() -> int:
    """Running processes with work pending and no trace entry for STUCK_AFTER become stuck."""
    return monitoring.mark_stuck_processes()


@job("tally.fold", every=2)
def fold_tally() -> None:
    """Fold the process counts the database triggers keep into one row per key."""
    tally.tally_fold()


@job("reconcile.replicas", every=settings.RECONCILE_INTERVAL or 3600)
def reconcile_replicas() -> dict[str, int] | None:
    """Compare every replica with its owner and keep the result (the dashboard shows it). It
    repairs nothing: a repair may erase a copy, and drift has a cause a person should see
    (`manage.py reconcile --repair` sends the owners' state, audited)."""
    if not settings.RECONCILE_INTERVAL:
        return None
    found = reconcile.replicas_check(by="scheduler")
    return {name: count for name, count in found.counts().items() if count} or None
