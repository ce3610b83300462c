"""Client details, one shape in both modes (shop-api.md, GET /api/v1/clients/<id>/)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import timezone

from common.errors import NotFound
from integration import lookups
from integration.models import IntegrationMode

PROFILE_KEYS = ("email", "first_name", "last_name", "phone", "company", "registered_at")


def compose(
    *,
    client_id: UUID,
    profile: dict[str, Any] | None,
    communications: list[dict[str, Any]],
    purchases: list[dict[str, Any]],
    served_by: dict[str, Any],
) -> dict[str, Any]:
    details: dict[str, Any] = {"id": str(client_id)}
    for key in PROFILE_KEYS:
        details[key] = profile.get(key) if profile else None
    details["marketing_consent"] = profile.get("marketing_consent") if profile else None
    details["communications"] = communications
    details["purchases"] = purchases
    details["served_by"] = served_by
    return details


def details_orchestrated(client_id: UUID) -> dict[str, Any]:
    """Ask crm and sales at once; whoever does not answer in time is named unavailable."""
    answers, unavailable = lookups.ask(["crm", "sales"], client_id)
    crm = answers.get("crm")
    if crm is not None and not crm["found"]:
        raise NotFound("No client with this id.")  # registration has not reached crm yet
    return compose(
        client_id=client_id,
        profile=crm["profile"] if crm else None,
        communications=crm["communications"] if crm else [],
        purchases=answers["sales"]["purchases"] if "sales" in answers else [],
        served_by={
            "mode": IntegrationMode.ORCHESTRATION.value,
            "source": "orchestrator",
            "as_of": timezone.now().isoformat(),
            "unavailable": unavailable,
        },
    )


def details_choreographed(client_id: UUID) -> dict[str, Any]:
    """Sales answers from its replica alone, saying how fresh it is; crm is not asked."""
    from sales import selectors as sales_selectors

    replica = sales_selectors.customer_replica_get(client_id=client_id)
    if replica is None:
        raise NotFound("No client with this id.")  # ClientCreated has not reached sales yet
    profile = {
        "email": replica.email,
        "first_name": replica.first_name,
        "last_name": replica.last_name,
        "phone": replica.phone,
        "company": replica.company,
        "marketing_consent": replica.marketing_consent,
        "registered_at": replica.registered_at.isoformat(),
    }
    communications = [
        {
            "id": str(item.id),
            "channel": item.channel,
            "subject": item.subject,
            "occurred_at": item.occurred_at.isoformat(),
        }
        for item in sales_selectors.communication_replica_list(client_id=client_id)
    ]
    return compose(
        client_id=client_id,
        profile=profile,
        communications=communications,
        purchases=lookups.purchases_of(client_id),
        served_by={
            "mode": IntegrationMode.CHOREOGRAPHY.value,
            "source": "sales-replica",
            "as_of": replica.as_of.isoformat(),
            "unavailable": [],
        },
    )
