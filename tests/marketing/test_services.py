from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from common.errors import Conflict, NotFound, ValidationFailed
from marketing.models import AudienceMember, Campaign, Lead
from marketing.services import (
    audience_add,
    audience_remove,
    campaign_create,
    lead_convert,
    lead_create,
    marketing_erase_client,
)
from tests.marketing.factories import AudienceMemberFactory, CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

JOINED_AT = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


# --- campaign_create -----------------------------------------------------------------------------


def test_campaign_create_stores_the_campaign() -> None:
    # when a campaign is created
    campaign = campaign_create(
        name=" Spring sale ",
        channel="social",
        starts_on=date(2025, 3, 1),
        ends_on=date(2025, 3, 31),
        description="Ten percent off",
    )

    # then one row holds it
    stored = Campaign.objects.get()
    assert stored == campaign
    assert (stored.name, stored.channel) == ("Spring sale", "social")
    assert (stored.starts_on, stored.ends_on) == (date(2025, 3, 1), date(2025, 3, 31))
    assert stored.description == "Ten percent off"


def test_campaign_create_may_end_the_day_it_starts_or_never() -> None:
    # when one campaign lasts a day and another has no end
    one_day = campaign_create(
        name="Fair", channel="event", starts_on=date(2025, 5, 1), ends_on=date(2025, 5, 1)
    )
    open_ended = campaign_create(name="Referrals", channel="referral", starts_on=date(2025, 5, 1))

    # then both are created
    assert (one_day.ends_on, open_ended.ends_on) == (date(2025, 5, 1), None)
    assert Campaign.objects.count() == 2


def test_campaign_create_refuses_to_end_before_it_starts() -> None:
    with pytest.raises(ValidationFailed) as raised:
        campaign_create(
            name="Backwards", channel="email", starts_on=date(2025, 5, 2), ends_on=date(2025, 5, 1)
        )
    assert raised.value.errors == {"ends_on": ["The campaign cannot end before it starts."]}
    assert Campaign.objects.count() == 0


def test_campaign_create_refuses_a_duplicate_name() -> None:
    # given a campaign
    CampaignFactory.create(name="Spring sale")

    # when another one takes its name
    with pytest.raises(Conflict) as raised:
        campaign_create(name="Spring sale", channel="email", starts_on=date(2025, 1, 1))

    # then it is a conflict on the name, and one campaign exists
    assert raised.value.errors == {"name": ["A campaign with this name already exists."]}
    assert Campaign.objects.count() == 1


def test_campaign_create_validates_the_channel_and_name() -> None:
    with pytest.raises(ValidationFailed) as raised:
        campaign_create(name=" ", channel="radio", starts_on=date(2025, 1, 1))
    assert raised.value.errors == {
        "name": ["This field cannot be blank."],
        "channel": ["Value 'radio' is not a valid choice."],
    }


# --- lead_create ---------------------------------------------------------------------------------


def test_lead_create_stores_the_normalised_lead() -> None:
    # given a campaign
    campaign = CampaignFactory.create()

    # when a lead comes in through it
    lead = lead_create(
        email=" Grace@Navy.MIL ",
        first_name=" Grace ",
        last_name="Hopper",
        source="campaign",
        campaign_id=campaign.id,
    )

    # then one row holds it, not yet converted
    stored = Lead.objects.get()
    assert stored == lead
    assert (stored.email, stored.first_name, stored.last_name) == (
        "Grace@navy.mil",
        "Grace",
        "Hopper",
    )
    assert (stored.source, stored.campaign_id) == ("campaign", campaign.id)
    assert (stored.converted_client_id, stored.converted_at) == (None, None)


def test_lead_create_needs_only_an_email_and_a_source() -> None:
    lead = lead_create(email="anon@example.com", source="shop")
    assert (lead.first_name, lead.last_name, lead.campaign_id) == ("", "", None)


def test_lead_create_refuses_an_unknown_campaign() -> None:
    with pytest.raises(ValidationFailed) as raised:
        lead_create(email="a@example.com", source="campaign", campaign_id=uuid.uuid4())
    assert raised.value.errors == {"campaign_id": ["No campaign with this id."]}
    assert Lead.objects.count() == 0


def test_lead_create_validates_the_email_and_source() -> None:
    with pytest.raises(ValidationFailed) as raised:
        lead_create(email="nope", source="billboard")
    assert raised.value.errors == {
        "email": ["Enter a valid email address."],
        "source": ["Value 'billboard' is not a valid choice."],
    }


# --- lead_convert --------------------------------------------------------------------------------


def test_lead_convert_links_the_lead_to_the_client() -> None:
    # given a lead
    lead = LeadFactory.create()
    client_id = uuid.uuid4()

    # when it converts
    converted = lead_convert(lead_id=lead.id, client_id=client_id)

    # then it names the client and when it converted
    stored = Lead.objects.get(id=lead.id)
    assert stored.converted_client_id == converted.converted_client_id == client_id
    assert stored.converted_at is not None


def test_lead_convert_is_idempotent() -> None:
    # given a converted lead
    lead = LeadFactory.create()
    client_id = uuid.uuid4()
    first = lead_convert(lead_id=lead.id, client_id=client_id)

    # when it converts again to the same client
    second = lead_convert(lead_id=lead.id, client_id=client_id)

    # then nothing moves
    assert second.converted_at == first.converted_at
    assert Lead.objects.get(id=lead.id).converted_at == first.converted_at


def test_lead_convert_to_another_client_is_a_conflict() -> None:
    # given a lead converted to a client
    lead = LeadFactory.create()
    first_client = uuid.uuid4()
    lead_convert(lead_id=lead.id, client_id=first_client)

    # when another client claims it
    with pytest.raises(Conflict) as raised:
        lead_convert(lead_id=lead.id, client_id=uuid.uuid4())

    # then the first conversion stands
    assert raised.value.extra == {"lead_id": str(lead.id), "client_id": str(first_client)}
    assert Lead.objects.get(id=lead.id).converted_client_id == first_client


def test_lead_convert_of_an_unknown_lead_is_not_found() -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        lead_convert(lead_id=missing, client_id=uuid.uuid4())
    assert raised.value.extra == {"lead_id": str(missing)}


# --- audience_add / audience_remove --------------------------------------------------------------


def test_audience_add_joins_the_newsletter_with_consent() -> None:
    # given a client id
    client_id = uuid.uuid4()

    # when the client is added
    member = audience_add(client_id=client_id, email="Ada@EXAMPLE.com")

    # then one consenting membership of the newsletter exists
    stored = AudienceMember.objects.get()
    assert stored == member
    assert (stored.audience, stored.client_id, stored.email) == (
        "newsletter",
        client_id,
        "Ada@example.com",
    )
    assert (stored.consent, stored.left_at) == (True, None)


def test_audience_add_is_idempotent_and_updates_the_email() -> None:
    # given a member
    client_id = uuid.uuid4()
    first = audience_add(client_id=client_id, email="ada@example.com")

    # when added again with a new address
    second = audience_add(client_id=client_id, email="countess@example.com")

    # then one membership exists, with the new address and the first join time
    assert second.id == first.id
    assert AudienceMember.objects.count() == 1
    stored = AudienceMember.objects.get()
    assert (stored.email, stored.joined_at) == ("countess@example.com", first.joined_at)


def test_audience_add_brings_back_a_member_who_left() -> None:
    # given a member who left
    member = AudienceMemberFactory.create(consent=False, left_at=JOINED_AT, joined_at=JOINED_AT)

    # when added again
    audience_add(client_id=member.client_id, email=member.email)

    # then consent is back and the first join time is kept
    stored = AudienceMember.objects.get(id=member.id)
    assert (stored.consent, stored.left_at, stored.joined_at) == (True, None, JOINED_AT)


def test_audience_add_keeps_one_membership_per_audience() -> None:
    client_id = uuid.uuid4()
    audience_add(client_id=client_id, email="ada@example.com")
    audience_add(client_id=client_id, email="ada@example.com", audience="vip")
    assert sorted(AudienceMember.objects.values_list("audience", flat=True)) == [
        "newsletter",
        "vip",
    ]


def test_audience_add_validates_its_input() -> None:
    with pytest.raises(ValidationFailed) as raised:
        audience_add(client_id=uuid.uuid4(), email="nope", audience="")
    assert raised.value.errors == {
        "audience": ["This field cannot be blank."],
        "email": ["Enter a valid email address."],
    }
    assert AudienceMember.objects.count() == 0


def test_audience_remove_withdraws_every_membership_once() -> None:
    # given a client in two audiences, and another client
    client_id = uuid.uuid4()
    AudienceMemberFactory.create(client_id=client_id, audience="newsletter")
    AudienceMemberFactory.create(client_id=client_id, audience="vip")
    other = AudienceMemberFactory.create()

    # when the client's consent is withdrawn, twice
    first = audience_remove(client_id=client_id)
    second = audience_remove(client_id=client_id)

    # then both memberships changed once, and the other client is untouched
    assert (first, second) == (2, 0)
    assert (
        AudienceMember.objects.filter(
            client_id=client_id, consent=False, left_at__isnull=False
        ).count()
        == 2
    )
    other.refresh_from_db()
    assert (other.consent, other.left_at) == (True, None)


def test_audience_remove_of_an_unknown_client_changes_nothing() -> None:
    assert audience_remove(client_id=uuid.uuid4()) == 0


# --- marketing_erase_client ----------------------------------------------------------------------


def test_marketing_erase_client_forgets_the_client() -> None:
    # given a client's memberships and converted lead, and another client's
    client_id = uuid.uuid4()
    AudienceMemberFactory.create(client_id=client_id, audience="newsletter")
    AudienceMemberFactory.create(client_id=client_id, audience="vip")
    lead = LeadFactory.create(converted_client_id=client_id, converted_at=JOINED_AT)
    other_member = AudienceMemberFactory.create()
    other_lead = LeadFactory.create(email="other@example.com")

    # when the client is erased, twice
    marketing_erase_client(client_id=client_id)
    marketing_erase_client(client_id=client_id)

    # then its memberships are gone, its lead is blank but kept, the others are untouched
    assert list(AudienceMember.objects.values_list("id", flat=True)) == [other_member.id]
    lead.refresh_from_db()
    assert (lead.email, lead.first_name, lead.last_name) == ("", "", "")
    assert lead.converted_client_id == client_id
    other_lead.refresh_from_db()
    assert (other_lead.email, other_lead.first_name) == ("other@example.com", "Grace")
