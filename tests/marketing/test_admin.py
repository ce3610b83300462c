from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from tests.marketing.factories import AudienceMemberFactory, CampaignFactory, LeadFactory

pytestmark = pytest.mark.django_db


def list_queries(admin_client: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


def lead_with_campaign() -> object:
    return LeadFactory.create(campaign=CampaignFactory.create())


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/admin/marketing/campaign/", lead_with_campaign),
        ("/admin/marketing/lead/", lead_with_campaign),
        ("/admin/marketing/audiencemember/", AudienceMemberFactory.create),
    ],
)
def test_list_pages_take_a_constant_number_of_queries(
    admin_client: HttpClient, url: str, make: Callable[[], object]
) -> None:
    # given one row, then five
    make()
    with_one = list_queries(admin_client, url)
    for _ in range(4):
        make()

    # then the list page costs the same number of queries
    assert list_queries(admin_client, url) == with_one


def test_campaign_list_counts_leads(admin_client: HttpClient) -> None:
    # given a campaign with two leads
    campaign = CampaignFactory.create()
    LeadFactory.create_batch(2, campaign=campaign)

    # then the list shows the count from its own query
    response = admin_client.get("/admin/marketing/campaign/")
    assert [row.lead_total for row in response.context["cl"].result_list] == [2]


def test_audience_members_are_filtered_by_audience(admin_client: HttpClient) -> None:
    AudienceMemberFactory.create(audience="newsletter")
    vip = AudienceMemberFactory.create(audience="vip")
    response = admin_client.get("/admin/marketing/audiencemember/", {"audience": "vip"})
    assert list(response.context["cl"].result_list) == [vip]
