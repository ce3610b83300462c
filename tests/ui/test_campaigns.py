"""Marketing's own pages: its campaigns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client as Browser

from marketing.models import Campaign

pytestmark = pytest.mark.django_db

SPRING = {"name": "Spring launch", "channel": "email", "starts_on": "2026-03-01", "ends_on": ""}


def test_marketing_starts_a_campaign_and_sees_it_listed(
    browser_for: Callable[..., Browser],
) -> None:
    marketer = browser_for("Marketing")

    response = marketer.post("/marketing/campaigns/new/", SPRING, follow=True)

    page = response.content.decode()
    assert response.redirect_chain == [("/marketing/campaigns/", 302)]
    assert "The campaign “Spring launch” was created." in page
    assert "<td>Spring launch</td>" in page and "<td>Email</td>" in page
    assert list(Campaign.objects.values_list("name", "channel")) == [("Spring launch", "email")]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"channel": "pigeon"}, "channel", "Select a valid choice."),
        ({"starts_on": "soon"}, "starts_on", "Enter a valid date."),
        ({"ends_on": "2026-02-01"}, "ends_on", "The campaign cannot end before it starts."),
    ],
)
def test_bad_campaigns_show_field_errors(
    browser_for: Callable[..., Browser], changes: dict[str, str], field: str, message: str
) -> None:
    response = browser_for("Marketing").post("/marketing/campaigns/new/", {**SPRING, **changes})

    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in page and message in page
    assert Campaign.objects.count() == 0


def test_a_second_campaign_with_the_same_name_is_a_form_error(
    browser_for: Callable[..., Browser],
) -> None:
    marketer = browser_for("Marketing")
    marketer.post("/marketing/campaigns/new/", SPRING)

    response = marketer.post("/marketing/campaigns/new/", SPRING)

    assert "A campaign with this name already exists." in response.content.decode()
    assert Campaign.objects.count() == 1


def test_campaigns_are_marketing_s(browser_for: Callable[..., Browser]) -> None:
    for team in ("Sales", "Customer Relations", "Operations"):
        browser = browser_for(team)
        assert browser.get("/marketing/campaigns/").status_code == 403
        assert browser.post("/marketing/campaigns/new/", SPRING).status_code == 403
    assert Browser().get("/marketing/campaigns/").status_code == 302
