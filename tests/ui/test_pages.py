"""The staff pages, through Django's test client: what each page shows, its forms and errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client as Browser

from crm.models import Communication
from integration import actions, gateway
from integration.core.trace import trace_record
from integration.models import Process, Step, StepStatus, TraceEntry
from sales.models import Purchase
from tests.crm.factories import ClientFactory

pytestmark = pytest.mark.django_db

REGISTRATION = {
    "email": "Grace.Hopper@Example.com",
    "first_name": "Grace",
    "last_name": "Hopper",
    "phone": "+1 555 0100",
    "company": "Compiler Works",
    "marketing_consent": "on",
}


def html(response: Any) -> str:
    return str(response.content.decode())


def register(browser: Browser, **changes: str) -> Any:
    return browser.post("/clients/new/", {**REGISTRATION, **changes})


def test_the_login_page_has_labelled_username_and_password_fields(client: Browser) -> None:
    page = html(client.get("/accounts/login/"))

    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert 'name="username"' in page and 'name="password"' in page


def test_each_team_logs_in_with_the_form_and_lands_on_the_dashboard(
    member: Callable[..., Any],
) -> None:
    for team in ("Marketing", "Sales", "Customer Relations", "Operations"):
        user = member(team)
        browser = Browser()
        response = browser.post(
            "/accounts/login/", {"username": user.username, "password": "a-long-test-password"}
        )
        assert response.status_code == 302 and response["Location"] == "/"
        assert "<h1>Dashboard</h1>" in html(browser.get("/"))


@pytest.mark.parametrize(
    "path",
    ["/", "/clients/", "/clients/new/", f"/processes/{uuid.uuid4()}/", "/integration-map/"],
)
def test_every_page_sends_strangers_to_the_login(client: Browser, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


# --- the dashboard ------------------------------------------------------------------------------


def test_operations_see_processes_by_status_and_mode_and_the_latest_failures(
    browser_for: Callable[..., Browser], member: Callable[..., Any]
) -> None:
    started = gateway.client_register(
        **{"email": "a@example.com", "first_name": "A", "last_name": "B"},
        initiator=gateway.Initiator(user=member(None)),
    )
    trace_record(
        process_id=started.id,
        component="crm",
        name="create_client",
        kind="failure",
        status="failed",
        attempt=3,
    )

    page = html(browser_for("Operations").get("/"))

    assert 'data-live="/ws/dashboard/"' in page
    assert "Processes by status and mode" in page
    running = re.search(r"Running</a></th>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)</td>", page)
    assert running is not None and running.groups() == ("1", "0")
    assert f'href="/processes/{started.id}/"' in page
    assert "create_client: failed after 3 attempts" in page
    assert "stuck process" in page and "dead deliver" in page


def test_other_teams_see_the_processes_they_started_not_the_figures(
    browser_for: Callable[..., Browser],
) -> None:
    marketer = browser_for("Marketing")
    process_id = register(marketer)["Location"].split("/")[2]

    page = html(marketer.get("/"))

    assert "Processes by status and mode" not in page
    assert "Processes you started" in page
    assert f'href="/processes/{process_id}/"' in page


# --- finding a client ---------------------------------------------------------------------------


def test_search_finds_clients_by_name_email_and_company(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    ada = known_client(first_name="Ada", last_name="Lovelace", company="Engines")
    known_client(first_name="Alan", last_name="Turing", company="Bletchley", email="at@x.org")
    seller = browser_for("Sales")

    for query in ("lovelace", ada.email, "engines", "ada love"):
        page = html(seller.get("/clients/", {"q": query}))
        assert "1 client matching" in page, query
        assert f'href="/clients/{ada.id}/"' in page
    assert "2 clients" in html(seller.get("/clients/"))


def test_a_search_line_links_the_client_and_gives_the_day_it_registered(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any], settings: Any
) -> None:
    settings.TIME_ZONE = "Europe/Paris"  # the day as staff read it: 23:30 UTC is the next day
    grace = known_client(first_name="Grace", last_name="Hopper", company="")
    type(grace).objects.filter(pk=grace.pk).update(
        registered_at=datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
    )

    page = html(browser_for("Sales").get("/clients/", {"q": "hopper"}))

    line = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    assert line is not None
    cells = re.findall(r"<td>(.*?)</td>", line.group(1), re.S)
    assert cells == [
        f'<a href="/clients/{grace.id}/">Grace Hopper</a>',
        grace.email,
        "—",
        '<time datetime="2026-03-05T00:30:00+01:00">5 Mar 2026</time>',
    ]


def test_search_results_are_paginated(browser_for: Callable[..., Browser], db: Any) -> None:
    ClientFactory.create_batch(30, company="Acme")
    browser = browser_for("Sales")

    first = html(browser.get("/clients/", {"q": "acme"}))
    second = html(browser.get("/clients/", {"q": "acme", "page": "2"}))

    assert "30 clients matching" in first and "Page 1 of 2" in first
    assert first.count('href="/clients/') - first.count('href="/clients/new/') == 25 + 1
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    assert browser.get("/clients/", {"q": "acme", "page": "nonsense"}).status_code == 200


def test_bad_search_input_is_a_form_error_not_a_server_error(
    browser_for: Callable[..., Browser],
) -> None:
    response = browser_for("Sales").get("/clients/", {"q": "nul\x00byte"})

    assert response.status_code == 200
    assert "Null characters are not allowed." in html(response)


# --- a client's details ---------------------------------------------------------------------------


def test_details_show_profile_history_purchases_processes_and_where_they_came_from(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Any],
    lookups_in_process: None,
) -> None:
    ada = known_client(phone="+44 1", company="Analytical Engines")
    Communication.objects.create(client=ada, channel="email", subject="Welcome to Ensemble")
    Purchase.objects.create(client_id=ada.id, order_ref="ORD-7", total="12.50", currency="EUR")
    relations = browser_for("Customer Relations")
    process = gateway.client_update(
        client_id=ada.id, **{"phone": "+44 2"}, initiator=gateway.SYSTEM
    )

    page = html(relations.get(f"/clients/{ada.id}/"))

    assert "<h1>Ada Lovelace</h1>" in page
    assert ada.email in page and "+44 1" in page and "Analytical Engines" in page
    assert "Welcome to Ensemble" in page
    assert "ORD-7" in page and "12.50 EUR" in page
    assert f'href="/processes/{process.id}/"' not in page  # not hers: shown, not linked
    assert "Client update" in page
    assert "<dt>Mode</dt><dd>orchestration</dd>" in page
    assert "<dt>Answered by</dt><dd>orchestrator</dd>" in page
    assert "<dt>Unavailable</dt><dd>none</dd>" in page
    assert f'href="/clients/{ada.id}/communications/new/"' in page


def test_each_team_sees_the_sections_its_permissions_allow(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Any],
    lookups_in_process: None,
) -> None:
    ada = known_client()
    sections = {
        "Marketing": (False, False, False, False),
        "Sales": (True, True, False, True),
        "Customer Relations": (True, True, True, False),
    }
    for team, expected in sections.items():
        page = html(browser_for(team).get(f"/clients/{ada.id}/"))
        assert (
            '<h2 id="communications-heading">' in page,
            '<h2 id="purchases-heading">' in page,
            "/communications/new/" in page,
            "/purchases/new/" in page,
        ) == expected, team
    assert browser_for("Operations").get(f"/clients/{ada.id}/").status_code == 403


def test_a_component_that_does_not_answer_is_named(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from integration.orchestrator import lookups

    ada = known_client()
    sales_answer = {"sales": lookups.answer("sales", ada.id)}
    monkeypatch.setattr(lookups, "ask", lambda components, client_id: (sales_answer, ["crm"]))

    page = html(browser_for("Sales").get(f"/clients/{ada.id}/"))

    assert "<dt>Unavailable</dt><dd>crm</dd>" in page
    assert "crm did not answer in time" in page
    assert f"<h1>Client {ada.id}</h1>" in page


def test_an_unknown_client_is_not_found(browser_for: Callable[..., Browser]) -> None:
    assert browser_for("Sales").get(f"/clients/{uuid.uuid4()}/").status_code == 404
    assert browser_for("Sales").get("/clients/not-a-uuid/").status_code == 404


# --- registering a client -----------------------------------------------------------------------


def test_the_registration_form_labels_its_fields(browser_for: Callable[..., Browser]) -> None:
    page = html(browser_for("Marketing").get("/clients/new/"))

    for field, label in (
        ("email", "Email"),
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("phone", 'Phone <span class="optional">(optional)</span>'),
        ("company", 'Company <span class="optional">(optional)</span>'),
    ):
        assert f'<label for="id_{field}">{label}</label>' in page


def test_registering_starts_the_process_and_opens_its_page(
    browser_for: Callable[..., Browser],
) -> None:
    marketer = browser_for("Marketing")

    response = register(marketer)

    process = Process.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/processes/{process.id}/"
    assert process.initiator_user is not None
    assert (process.kind, process.mode, process.initiator_user.username) == (
        "client_registration",
        "orchestration",
        "marketer",
    )
    assert process.input == {
        "email": "Grace.Hopper@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone": "+1 555 0100",
        "company": "Compiler Works",
        "marketing_consent": True,
    }
    assert marketer.get(response["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": ""}, "email", "This field is required."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"first_name": "   "}, "first_name", "This field is required."),
        ({"last_name": "x" * 151}, "last_name", "Ensure this value has at most 150 characters"),
        ({"company": "nul\x00"}, "company", "Null characters are not allowed."),
    ],
)
def test_bad_registrations_show_field_errors(
    browser_for: Callable[..., Browser], changes: dict[str, str], field: str, message: str
) -> None:
    response = register(browser_for("Marketing"), **changes)

    page = html(response)
    assert response.status_code == 200
    assert Process.objects.count() == 0
    assert f'id="id_{field}_error"' in page and message in page
    assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="id_{field}"', page)


def test_a_duplicate_email_is_a_form_error_naming_it(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    known_client(email="Grace.Hopper@example.com")

    response = register(browser_for("Marketing"), email=" Grace.Hopper@EXAMPLE.com ")

    page = html(response)
    assert response.status_code == 200
    assert "Grace.Hopper@example.com is already registered to another client." in page
    assert Process.objects.count() == 0


def test_only_marketing_registers_clients(browser_for: Callable[..., Browser]) -> None:
    for team in ("Sales", "Customer Relations", "Operations", None):
        assert browser_for(team, f"u{team}").get("/clients/new/").status_code == 403
        assert register(browser_for(team, f"v{team}")).status_code == 403
    assert Process.objects.count() == 0


# --- purchases and communications -----------------------------------------------------------------


def test_sales_records_a_purchase_and_follows_its_process(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    ada = known_client()
    seller = browser_for("Sales")
    order = {"order_ref": "ORD-1", "total": "19.90", "currency": "eur", "purchased_at": ""}

    first = seller.post(f"/clients/{ada.id}/purchases/new/", order)
    again = seller.post(f"/clients/{ada.id}/purchases/new/", order, follow=True)

    process = Process.objects.get(kind="purchase")
    assert first["Location"] == f"/processes/{process.id}/"
    assert process.input == {
        "order_ref": "ORD-1",
        "total": "19.90",
        "currency": "EUR",
        "purchased_at": None,
    }
    assert again.redirect_chain == [(f"/processes/{process.id}/", 302)]
    assert "This order was recorded already" in html(again)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total": "-1"}, "total"),
        ({"total": "1.999"}, "total"),
        ({"total": "NaN"}, "total"),
        ({"currency": "E1"}, "currency"),
        ({"currency": "€UR"}, "currency"),
        ({"order_ref": ""}, "order_ref"),
        ({"purchased_at": "yesterday"}, "purchased_at"),
    ],
)
def test_bad_purchases_show_field_errors(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Any],
    changes: dict[str, str],
    field: str,
) -> None:
    ada = known_client()
    order = {"order_ref": "ORD-1", "total": "19.90", "currency": "EUR", **changes}

    response = browser_for("Sales").post(f"/clients/{ada.id}/purchases/new/", order)

    assert response.status_code == 200
    assert f'id="id_{field}_error"' in html(response)
    assert Process.objects.count() == 0


def test_purchases_for_unknown_clients_and_other_teams_are_refused(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    order = {"order_ref": "ORD-1", "total": "1", "currency": "EUR"}
    unknown = browser_for("Sales").post(f"/clients/{uuid.uuid4()}/purchases/new/", order)
    ada = known_client()
    refused = browser_for("Customer Relations").post(f"/clients/{ada.id}/purchases/new/", order)

    assert (unknown.status_code, refused.status_code) == (404, 403)


def test_customer_relations_adds_a_communication(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    ada = known_client()
    carer = browser_for("Customer Relations")

    response = carer.post(
        f"/clients/{ada.id}/communications/new/",
        {"channel": "phone", "subject": " Called about the order ", "body": "All fine."},
        follow=True,
    )

    assert response.redirect_chain == [(f"/clients/{ada.id}/", 302)]
    assert list(Communication.objects.values_list("channel", "subject", "body")) == [
        ("phone", "Called about the order", "All fine.")
    ]


def test_bad_communications_show_field_errors_and_other_teams_are_refused(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:
    ada = known_client()
    url = f"/clients/{ada.id}/communications/new/"

    bad_channel = browser_for("Customer Relations").post(url, {"channel": "fax", "subject": "x"})
    no_subject = browser_for("Customer Relations", "c2").post(url, {"channel": "note"})
    refused = browser_for("Sales").post(url, {"channel": "note", "subject": "x"})

    assert 'id="id_channel_error"' in html(bad_channel)
    assert 'id="id_subject_error"' in html(no_subject)
    assert refused.status_code == 403
    assert Communication.objects.count() == 0


# --- a process's page ---------------------------------------------------------------------------


def test_the_process_page_shows_one_status_element_the_trace_and_the_diagram(
    browser_for: Callable[..., Browser],
) -> None:
    marketer = browser_for("Marketing")
    page_url = register(marketer)["Location"]
    process = Process.objects.get()

    page = html(marketer.get(page_url))

    assert page.count("data-status=") == 1
    assert 'data-status="running"' in page
    assert f'data-live="/ws/processes/{process.id}/" data-after="2"' in page
    assert '<tr id="seq-1"' in page and '<tr id="seq-2"' in page
    assert "to: crm" in page  # the first command, to crm
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sequence"' in page
    assert "create_client" in page
    assert list(Step.objects.values_list("name", "status")) == [("create_client", StepStatus.SENT)]


def test_operations_open_every_process_and_others_only_their_own(
    browser_for: Callable[..., Browser],
) -> None:
    page_url = register(browser_for("Marketing"))["Location"]

    assert browser_for("Operations").get(page_url).status_code == 200
    assert browser_for("Marketing", "another-marketer").get(page_url).status_code == 403
    assert browser_for("Sales").get(page_url).status_code == 403
    assert browser_for("Operations", "op2").get(f"/processes/{uuid.uuid4()}/").status_code == 404


def test_the_page_of_a_finished_process_says_when_it_finished(
    browser_for: Callable[..., Browser],
) -> None:
    from integration.core.lifecycle import process_close

    register(browser_for("Marketing"))
    process = Process.objects.get()
    process_close(process_id=process.id, reason="test", by="test")

    page = html(browser_for("Operations").get(f"/processes/{process.id}/"))

    assert 'data-status="closed"' in page and page.count("data-status=") == 1
    assert "not yet" not in page
    assert TraceEntry.objects.filter(process=process, status="closed").exists()


# --- the integration map ------------------------------------------------------------------------


def test_the_integration_map_draws_both_modes_from_the_registries(
    browser_for: Callable[..., Browser],
) -> None:
    from integration import bus
    from integration.orchestrator.definitions import all_definitions

    page = html(browser_for("Sales").get("/integration-map/"))

    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="sequence"') == 2
    for definition in all_definitions():
        for step in definition.steps:
            assert step.name in page
    for listener in bus.registry():
        assert listener.name in page and listener.event in page
    assert "<td>sales.replicate_client</td><td>sales</td><td>enabled</td>" in page


def test_the_integration_map_is_for_staff(db: Any) -> None:
    from django.contrib.auth import get_user_model

    browser = Browser()
    browser.force_login(get_user_model().objects.create_user("outsider", password="x" * 12))

    assert browser.get("/integration-map/").status_code == 403


def test_in_choreography_details_come_from_the_sales_replica(
    browser_for: Callable[..., Browser], known_client: Callable[..., Any]
) -> None:

    ada = known_client(company="Analytical Engines")
    actions.mode_switch(mode="choreography", changed_by="test")  # fills the replicas first

    page = html(browser_for("Sales").get(f"/clients/{ada.id}/"))

    assert "<dt>Mode</dt><dd>choreography</dd>" in page
    assert "<dt>Answered by</dt><dd>sales-replica</dd>" in page
    assert "Analytical Engines" in page
