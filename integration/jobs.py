"""The scheduler's periodic jobs (see integration/scheduler.py)."""

from __future__ import annotations

from integration import bus, idempotency, monitoring, webhooks
from integration.orchestrator import engine
from integration.scheduler import job


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


@job("webhooks.sweep", every=1)
def sweep_webhooks() -> int:
    """Send the webhook attempts that are due (first attempts the broker lost, retries)."""
    return webhooks.webhooks_sweep()


@job("idempotency.prune", every=600)
def prune_idempotency_keys() -> int:
    """Forget Idempotency-Keys past their 24 hours."""
    return idempotency.records_prune()
