"""Every write of Marketing. Each function is one transaction and raises only `common.errors`."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from common import plain_sql
from common.emails import normalise_email
from common.errors import Conflict, NotFound, ValidationFailed
from common.validation import full_clean_or_raise
from marketing.models import DEFAULT_AUDIENCE, AudienceMember, Campaign, Lead


def campaign_create(
    *,
    name: str,
    channel: str,
    starts_on: date,
    ends_on: date | None = None,
    description: str = "",
) -> Campaign:
    campaign = Campaign(
        name=name.strip(),
        channel=channel,
        starts_on=starts_on,
        ends_on=ends_on,
        description=description.strip(),
    )
    full_clean_or_raise(campaign)
    if ends_on is not None and ends_on < starts_on:
        raise ValidationFailed(
            "Invalid dates.", errors={"ends_on": ["The campaign cannot end before it starts."]}
        )
    try:
        with transaction.atomic():
            campaign.save(force_insert=True)
    except IntegrityError:
        raise Conflict(
            "A campaign with this name already exists.",
            errors={"name": ["A campaign with this name already exists."]},
        ) from None
    return campaign


def lead_create(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    source: str,
    campaign_id: UUID | None = None,
) -> Lead:
    lead = Lead(
        email=normalise_email(email),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        source=source,
        campaign_id=campaign_id,
    )
    full_clean_or_raise(lead, exclude=["campaign"])
    with transaction.atomic():
        # An unknown campaign is bad input, not a missing resource: the lead is what is created.
        if campaign_id is not None and not Campaign.objects.filter(id=campaign_id).exists():
            raise ValidationFailed(
                "Unknown campaign.", errors={"campaign_id": ["No campaign with this id."]}
            )
        lead.save(force_insert=True)
    return lead


def lead_convert(*, lead_id: UUID, client_id: UUID) -> Lead:
    """Mark the lead as converted to the client. Converting it again to the same client does
    nothing; to another client is a Conflict."""
    with transaction.atomic():
        # A conditional update claims the lead: two converters cannot both win.
        Lead.objects.filter(id=lead_id, converted_client_id__isnull=True).update(
            converted_client_id=client_id, converted_at=timezone.now()
        )
        lead = Lead.objects.filter(id=lead_id).first()
        if lead is None:
            raise NotFound("Lead not found.", extra={"lead_id": str(lead_id)})
        if lead.converted_client_id != client_id:
            raise Conflict(
                "This lead was converted to another client.",
                extra={"lead_id": str(lead_id), "client_id": str(lead.converted_client_id)},
            )
    return lead


def audience_add(
    *, client_id: UUID, email: str, audience: str = DEFAULT_AUDIENCE
) -> AudienceMember:
    """Add the client to the audience with consent, or bring them back if they had left."""
    member = AudienceMember(client_id=client_id, email=normalise_email(email), audience=audience)
    full_clean_or_raise(member)
    with transaction.atomic():
        member, _ = AudienceMember.objects.update_or_create(
            audience=member.audience,
            client_id=client_id,
            defaults={"email": member.email, "consent": True, "left_at": None},
        )
    return member


def audience_remove(*, client_id: UUID) -> int:
    """Withdraw the client's consent from every audience they are in; returns how many
    memberships changed (0 when replayed)."""
    with transaction.atomic():
        return AudienceMember.objects.filter(client_id=client_id, left_at__isnull=True).update(
            consent=False, left_at=timezone.now()
        )


def audience_apply(
    *,
    client_id: UUID,
    email: str,
    consent: bool,
    client_version: int,
    audience: str = DEFAULT_AUDIENCE,
) -> bool:
    """Reflect this version of the client's consent; an older or repeated version changes
    nothing. A client without consent keeps a row (left) so that an older event cannot add them."""
    now = timezone.now()
    fields = {
        "email": normalise_email(email),
        "consent": consent,
        "left_at": None if consent else now,
        "client_version": client_version,
    }
    # A first copy goes in at once; a concurrent first copy may win: the unique member decides.
    if plain_sql.insert_unless_taken(
        AudienceMember(audience=audience, client_id=client_id, **fields)
    ):
        return True
    # No savepoint inside a caller's transaction: nothing here is meant to fail and be survived.
    with transaction.atomic(savepoint=False):
        member = (
            AudienceMember.objects.select_for_update()
            .filter(audience=audience, client_id=client_id)
            .first()
        )
        if member is None:  # erased meanwhile: nothing to reflect
            return False
        if member.client_version >= client_version:
            return False
        if (consent and member.consent) or (not consent and not member.consent):
            fields["left_at"] = member.left_at
        AudienceMember.objects.filter(pk=member.pk).update(**fields)
    return True


def marketing_erase_client(*, client_id: UUID) -> None:
    """Delete the client's memberships and blank the personal data of the leads converted to
    them; the leads stay, so campaigns keep their counts. Erasing twice does nothing more."""
    with transaction.atomic():
        AudienceMember.objects.filter(client_id=client_id).delete()
        Lead.objects.filter(converted_client_id=client_id).update(
            email="", first_name="", last_name=""
        )
