"""Client details, choreographed: sales answers from its replica alone."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from integration.core.details import ReplicaBehind, compose, purchase_shape
from integration.models import IntegrationMode
from sales import selectors as sales_selectors


def details_choreographed(client_id: UUID, min_version: int | None = None) -> dict[str, Any]:
    """Sales answers from its replica alone, saying how fresh it is; crm is not asked. A replica
    without the client, or behind the version asked for, raises ReplicaBehind."""
    replica = sales_selectors.customer_replica_get(client_id=client_id)
    if replica is None:
        raise ReplicaBehind("ClientCreated has not reached sales yet")
    if min_version is not None and replica.client_version < min_version:
        raise ReplicaBehind(f"the replica is at version {replica.client_version}")
    profile = {
        "email": replica.email,
        "first_name": replica.first_name,
        "last_name": replica.last_name,
        "phone": replica.phone,
        "company": replica.company,
        "marketing_consent": replica.marketing_consent,
        "registered_at": replica.registered_at.isoformat(),
    }
    copies, purchases = sales_selectors.customer_history(client_id=client_id)
    communications = [
        {
            "id": str(item.id),
            "channel": item.channel,
            "subject": item.subject,
            "occurred_at": item.occurred_at.isoformat(),
        }
        for item in copies
    ]
    return compose(
        client_id=client_id,
        profile=profile,
        communications=communications,
        purchases=[purchase_shape(item) for item in purchases],
        served_by={
            "mode": IntegrationMode.CHOREOGRAPHY.value,
            "source": "sales-replica",
            "as_of": replica.as_of.isoformat(),
            "version": replica.client_version,
            "unavailable": [],
        },
    )
