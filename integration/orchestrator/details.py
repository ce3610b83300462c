"""Client details, orchestrated: the orchestrator asks the owners, crm and sales, at once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.utils import timezone

from common.errors import NotFound
from integration.core.details import compose
from integration.models import IntegrationMode
from integration.orchestrator import lookups


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
