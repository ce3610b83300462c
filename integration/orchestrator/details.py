"""Client details from the owners: orchestrated, the orchestrator asks crm and sales at once; in
either mode crm answers when a replica cannot."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from common.errors import NotFound, Unavailable
from integration.core.details import at_version, compose, purchases_of
from integration.models import IntegrationMode
from integration.orchestrator import lookups


def details_orchestrated(client_id: UUID, min_version: int | None = None) -> dict[str, Any]:
    """Ask crm and sales at once; whoever does not answer in time is named unavailable. Asked
    for a version, crm must answer at it or newer, or the answer is 503."""
    answers, unavailable = lookups.ask(["crm", "sales"], client_id)
    profile = _crm_profile(answers.get("crm"), client_id, min_version)
    crm = answers.get("crm")
    return compose(
        client_id=client_id,
        profile=profile,
        communications=crm["communications"] if crm else [],
        purchases=answers["sales"]["purchases"] if "sales" in answers else [],
        served_by={
            "mode": IntegrationMode.ORCHESTRATION.value,
            "source": "orchestrator",
            "as_of": timezone.now().isoformat(),
            "version": profile["version"] if profile else None,
            "unavailable": unavailable,
        },
    )


def details_from_crm(client_id: UUID, min_version: int | None, *, mode: str) -> dict[str, Any]:
    """The owner answers when the replica cannot (not received yet, or behind the version
    asked for): crm over its lookup queue; purchases are sales' own data."""
    answers, _ = lookups.ask(["crm"], client_id)
    profile = _crm_profile(answers.get("crm"), client_id, min_version)
    if profile is None:
        raise Unavailable(f"crm did not answer within {settings.LOOKUP_TIMEOUT} s.")
    return compose(
        client_id=client_id,
        profile=profile,
        communications=answers["crm"]["communications"],
        purchases=purchases_of(client_id),
        served_by={
            "mode": mode,
            "source": "crm",
            "as_of": timezone.now().isoformat(),
            "version": profile["version"],
            "unavailable": [],
        },
    )


def _crm_profile(
    answer: dict[str, Any] | None, client_id: UUID, min_version: int | None
) -> dict[str, Any] | None:
    """crm's profile of the client; None when crm did not answer and no version was asked."""
    if answer is None:
        if min_version is not None:
            raise Unavailable(f"crm did not answer within {settings.LOOKUP_TIMEOUT} s.")
        return None
    if not answer["found"]:
        if min_version is not None:  # the registration has not reached crm yet
            raise Unavailable(f"crm does not hold the client{at_version(min_version)} yet.")
        raise NotFound("No client with this id.")
    profile: dict[str, Any] = answer["profile"]
    if min_version is not None and profile["version"] < min_version:
        raise Unavailable(f"crm does not hold the client{at_version(min_version)} yet.")
    return profile
