"""The shop API's periodic jobs, run by the scheduler (integration/scheduler/runner.py)."""

from __future__ import annotations

from integration.scheduler.runner import job
from shop_api import idempotency, webhooks


@job("webhooks.sweep", every=1)
def sweep_webhooks() -> int:
    """Send the webhook attempts that are due (first attempts the broker lost, retries)."""
    return webhooks.webhooks_sweep()


@job("idempotency.prune", every=600)
def prune_idempotency_keys() -> int:
    """Forget Idempotency-Keys past their 24 hours."""
    return idempotency.records_prune()
