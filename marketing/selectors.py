"""Every read of Marketing."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from marketing.models import DEFAULT_AUDIENCE, AudienceMember, Campaign, Lead


def campaign_list() -> QuerySet[Campaign]:
    return Campaign.objects.order_by("-starts_on", "name")


def lead_list(*, campaign_id: UUID | None = None) -> QuerySet[Lead]:
    leads = Lead.objects.select_related("campaign").order_by("-created_at")
    if campaign_id is not None:
        leads = leads.filter(campaign_id=campaign_id)
    return leads


def audience_members(*, audience: str = DEFAULT_AUDIENCE) -> QuerySet[AudienceMember]:
    """Members who may be contacted: consenting and not left."""
    return AudienceMember.objects.filter(
        audience=audience, consent=True, left_at__isnull=True
    ).order_by("joined_at")


def is_in_audience(*, client_id: UUID, audience: str = DEFAULT_AUDIENCE) -> bool:
    return audience_members(audience=audience).filter(client_id=client_id).exists()
