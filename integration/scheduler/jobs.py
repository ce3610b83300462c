"""The integration layer's periodic jobs (the runner: integration/scheduler/runner.py; the shop
API registers its own in shop_api/jobs.py)."""

from __future__ import annotations

from integration import bus
from integration.core import monitoring
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
