"""The scheduler's periodic jobs (see integration/scheduler.py)."""

from __future__ import annotations

from integration.orchestrator import engine
from integration.scheduler import job


@job("orchestrator.sweep_steps", every=0.5)
def sweep_steps() -> int:
    """Send unpublished commands, retries that are due, and resend unanswered ones."""
    return engine.steps_sweep()
