from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pytest_django import DjangoAssertNumQueries

from marketing.selectors import audience_members, campaign_list, is_in_audience, lead_list
from tests.marketing.factories import AudienceMemberFactory, CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def test_campaign_list_is_latest_start_first_then_by_name() -> None:
    # given three campaigns, two starting the same day
    old = CampaignFactory.create(name="Winter", starts_on=date(2025, 1, 1))
    b = CampaignFactory.create(name="B spring", starts_on=date(2025, 3, 1))
    a = CampaignFactory.create(name="A spring", starts_on=date(2025, 3, 1))

    # then the latest start comes first, ties by name
    assert list(campaign_list()) == [a, b, old]


def test_lead_list_is_newest_first_and_filters_by_campaign() -> None:
    # given leads of two campaigns and one without
    spring, winter = CampaignFactory.create(), CampaignFactory.create()
    first = LeadFactory.create(campaign=spring, created_at=NOON)
    second = LeadFactory.create(campaign=spring, created_at=NOON + timedelta(hours=1))
    winter_lead = LeadFactory.create(campaign=winter, created_at=NOON + timedelta(hours=2))
    loose = LeadFactory.create(created_at=NOON + timedelta(hours=3))

    # then every lead, newest first, or a campaign's own
    assert list(lead_list()) == [loose, winter_lead, second, first]
    assert list(lead_list(campaign_id=spring.id)) == [second, first]
    assert list(lead_list(campaign_id=uuid.uuid4())) == []


def test_lead_list_reads_the_campaigns_in_the_same_query(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    # given three leads with campaigns
    LeadFactory.create_batch(3, campaign=CampaignFactory.create())

    # when their campaign names are read
    with django_assert_num_queries(1):
        names = [lead.campaign.name for lead in lead_list() if lead.campaign is not None]

    # then one query fetched them all
    assert len(names) == 3


def test_audience_members_are_the_consenting_members_who_stayed() -> None:
    # given members in and out of the newsletter, and of another audience
    staying = AudienceMemberFactory.create(joined_at=NOON)
    later = AudienceMemberFactory.create(joined_at=NOON + timedelta(hours=1))
    AudienceMemberFactory.create(consent=False, left_at=NOON)
    AudienceMemberFactory.create(audience="vip")

    # then only the newsletter's consenting members who stayed are listed, by join time
    assert list(audience_members()) == [staying, later]
    assert [m.audience for m in audience_members(audience="vip")] == ["vip"]


def test_is_in_audience_needs_consent_and_not_having_left() -> None:
    # given a member, a member who left and a member of another audience
    member = AudienceMemberFactory.create()
    left = AudienceMemberFactory.create(consent=False, left_at=NOON)
    vip = AudienceMemberFactory.create(audience="vip")

    # then only the staying newsletter member is in the newsletter
    assert is_in_audience(client_id=member.client_id) is True
    assert is_in_audience(client_id=left.client_id) is False
    assert is_in_audience(client_id=vip.client_id) is False
    assert is_in_audience(client_id=vip.client_id, audience="vip") is True
    assert is_in_audience(client_id=uuid.uuid4()) is False
