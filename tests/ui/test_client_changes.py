"""Changing, erasing and exporting clients from the staff pages, through Django's test client:
who may, what reaches the gateway, the exact form errors, and the CSV Marketing downloads."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client as Browser

from crm.models import Client
from integration import gateway
from integration.models import Process

pytestmark = pytest.mark.django_db

HEADER = "id,first_name,last_name,company,email,marketing_consent,registered\r\n"


def html(response: Any) -> str:
    return str(response.content.decode())


def as_posted(client: Client, **changes: Any) -> dict[str, Any]:
    """The edit form as its page prefills it, with some fields changed."""
    form = {
        "email": client.email,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "phone": client.phone,
        "company": client.company,
    }
    if client.marketing_consent:
        form["marketing_consent"] = "on"
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def csv_text(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


# --- changing a client ------------------------------------------------------------------------


def test_the_edit_form_is_prefilled_and_labelled_as_the_registration(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client(phone="+44 1", marketing_consent=True)

    page = html(browser_for("Marketing").get(f"/clients/{ada.id}/edit/"))

    assert "<h1>Change Ada Lovelace</h1>" in page
    for field, label in (
        ("email", "Email"),
        ("first_name", "First name"),
        ("last_name", "Last name"),
        ("phone", "Phone"),
        ("company", "Company"),
        ("marketing_consent", "Marketing consent"),
    ):
        assert re.search(rf'<label for="id_{field}">{label}', page), field
    assert f'value="{ada.email}"' in page
    assert 'value="+44 1"' in page and 'value="Analytical Engines"' in page
    assert re.search(r'<input type="checkbox" name="marketing_consent"[^>]*checked', page)


def test_only_what_changed_is_sent_and_the_update_process_opens(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client(phone="+44 1", marketing_consent=True)
    relations = browser_for("Customer Relations")

    response = relations.post(
        f"/clients/{ada.id}/edit/",
        as_posted(
            ada, phone="+44 2", marketing_consent=None, email=ada.email.replace(".com", ".COM")
        ),
    )

    process = Process.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/processes/{process.id}/"
    assert process.input == {"phone": "+44 2", "marketing_consent": False}
    assert process.kind == "client_update" and process.client_id == ada.id
    assert process.initiator_user is not None
    assert process.initiator_user.username == "carer"
    assert relations.get(response["Location"]).status_code == 200


def test_a_cleared_optional_field_is_a_change(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client(company="Analytical Engines")

    browser_for("Marketing").post(f"/clients/{ada.id}/edit/", as_posted(ada, company=""))

    assert Process.objects.get().input == {"company": ""}


def test_nothing_changed_is_a_form_error(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client(email="ada@example.com")
    # The same address typed with another case of domain and spaces is the same address.
    posted = as_posted(ada, email=" ada@EXAMPLE.com ", first_name=" Ada ")

    response = browser_for("Marketing").post(f"/clients/{ada.id}/edit/", posted)

    assert response.status_code == 200
    assert (
        '<div class="errors" role="alert"><p>Nothing changed: change at least one field before '
        "saving.</p></div>"
    ) in html(response)
    assert Process.objects.count() == 0


def test_an_email_of_another_client_is_a_form_error_naming_it(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    grace = known_client(email="grace@example.com", first_name="Grace")
    ada = known_client()

    response = browser_for("Customer Relations").post(
        f"/clients/{ada.id}/edit/", as_posted(ada, email="grace@EXAMPLE.com")
    )

    page = html(response)
    assert response.status_code == 200
    assert "grace@example.com already belongs to another client." in page
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="id_email"', page)
    assert f'href="/clients/{grace.id}/">Open the client who has this email' in page
    assert Process.objects.count() == 0


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": ""}, "email", "This field is required."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"last_name": "  "}, "last_name", "This field is required."),
        ({"phone": "9" * 41}, "phone", "Ensure this value has at most 40 characters"),
    ],
)
def test_bad_changes_show_field_errors(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Client],
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    ada = known_client()

    response = browser_for("Marketing").post(f"/clients/{ada.id}/edit/", as_posted(ada, **changes))

    page = html(response)
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in page and message in page
    assert Process.objects.count() == 0


def test_who_may_change_a_client(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client()
    expected = {
        "Marketing": 200,
        "Customer Relations": 200,
        "Sales": 403,
        "Operations": 403,
        None: 403,
    }
    for team, status in expected.items():
        browser = browser_for(team, f"edit{team}")
        assert browser.get(f"/clients/{ada.id}/edit/").status_code == status, team
        if status == 403:
            posted = as_posted(ada, phone="+1")
            assert browser.post(f"/clients/{ada.id}/edit/", posted).status_code == 403, team
    assert Process.objects.count() == 0


def test_unknown_and_erased_clients_cannot_be_changed(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client()
    gateway.client_erase(client_id=ada.id, initiator=gateway.SYSTEM)
    marketer = browser_for("Marketing")

    assert marketer.get(f"/clients/{uuid.uuid4()}/edit/").status_code == 404
    assert marketer.get(f"/clients/{ada.id}/edit/").status_code == 404
    assert marketer.post(f"/clients/{ada.id}/edit/", as_posted(ada, phone="+1")).status_code == 404


def test_the_client_page_links_to_what_the_team_may_do(
    browser_for: Callable[..., Browser],
    known_client: Callable[..., Client],
    lookups_in_process: None,
) -> None:
    ada = known_client()
    links = {
        "Marketing": (True, False),
        "Customer Relations": (True, True),
        "Sales": (False, False),
    }
    for team, expected in links.items():
        page = html(browser_for(team).get(f"/clients/{ada.id}/"))
        assert (
            f'href="/clients/{ada.id}/edit/"' in page,
            f'href="/clients/{ada.id}/erase/"' in page,
        ) == expected, team


# --- erasing a client -------------------------------------------------------------------------


def test_the_erasure_page_names_the_client_and_what_erasure_does(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client()

    page = html(browser_for("Customer Relations").get(f"/clients/{ada.id}/erase/"))

    assert "<h1>Erase Ada Lovelace</h1>" in page
    assert ada.email in page and str(ada.id) in page
    assert "What erasure does" in page and "It cannot be undone." in page
    assert '<label for="id_confirm">I understand that erasing this client cannot be undone' in page
    assert Process.objects.count() == 0


def test_erasing_needs_the_confirmation(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client()

    response = browser_for("Customer Relations").post(f"/clients/{ada.id}/erase/", {})

    page = html(response)
    assert response.status_code == 200
    assert 'id="id_confirm_error"' in page and "Tick the box to confirm the erasure." in page
    assert Process.objects.count() == 0 and gateway.client_known(ada.id)


@pytest.mark.parametrize("team", ["Customer Relations", "Operations"])
def test_a_confirmed_erasure_starts_and_opens_its_process(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client], team: str
) -> None:
    ada = known_client()
    browser = browser_for(team)

    response = browser.post(f"/clients/{ada.id}/erase/", {"confirm": "on"})

    process = Process.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/processes/{process.id}/"
    assert (process.kind, process.client_id) == ("client_erasure", ada.id)
    assert browser.get(response["Location"]).status_code == 200
    assert not gateway.client_known(ada.id)
    assert browser.get(f"/clients/{ada.id}/erase/").status_code == 404
    assert browser.post(f"/clients/{ada.id}/erase/", {"confirm": "on"}).status_code == 404
    assert Process.objects.count() == 1


def test_who_may_erase_a_client(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client()
    for team in ("Marketing", "Sales", None):
        browser = browser_for(team, f"erase{team}")
        assert browser.get(f"/clients/{ada.id}/erase/").status_code == 403, team
        assert browser.post(f"/clients/{ada.id}/erase/", {"confirm": "on"}).status_code == 403
        assert browser.get(f"/clients/{uuid.uuid4()}/erase/").status_code == 403, team
    for team in ("Customer Relations", "Operations"):
        browser = browser_for(team, f"erase{team}")
        assert browser.get(f"/clients/{ada.id}/erase/").status_code == 200, team
        assert browser.get(f"/clients/{uuid.uuid4()}/erase/").status_code == 404, team
    assert Process.objects.count() == 0 and gateway.client_known(ada.id)


# --- the export -------------------------------------------------------------------------------


def test_the_export_streams_the_search_results_as_an_attachment(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    ada = known_client(phone="+44 1", marketing_consent=True, company="Analytical Engines")
    known_client(first_name="Grace", last_name="Hopper", company="Compiler Works")

    response = browser_for("Marketing").get("/clients/export.csv", {"q": "analytical"})

    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="clients-\d{4}-\d{2}-\d{2}\.csv"', response["Content-Disposition"]
    )
    registered = ada.registered_at.date().isoformat()
    assert csv_text(response) == (
        HEADER + f"{ada.id},Ada,Lovelace,Analytical Engines,{ada.email},yes,{registered}\r\n"
    )


def test_the_export_leaves_out_phones_unconsented_emails_and_erased_clients(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    silent = known_client(phone="+44 1", marketing_consent=False, first_name="Silent")
    erased = known_client(phone="+44 2", marketing_consent=True, first_name="Gone")
    gateway.client_erase(client_id=erased.id, initiator=gateway.SYSTEM)

    text = csv_text(browser_for("Marketing").get("/clients/export.csv", {"q": ""}))

    registered = silent.registered_at.date().isoformat()
    assert text == HEADER + f"{silent.id},Silent,Lovelace,Analytical Engines,,no,{registered}\r\n"
    assert "+44" not in text and silent.email not in text


def test_export_cells_never_start_a_formula(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    tricky = known_client(
        first_name='=HYPERLINK("http://evil")',
        last_name="@SUM(A1)",
        company="+cmd|' /C calc'!A0",
        email="-x@example.com",
        marketing_consent=True,
    )

    text = csv_text(browser_for("Marketing").get("/clients/export.csv"))

    row = text.splitlines()[1]
    registered = tricky.registered_at.date().isoformat()
    assert row == (
        f'{tricky.id},"\'=HYPERLINK(""http://evil"")",\'@SUM(A1),'
        f"'+cmd|' /C calc'!A0,'-x@example.com,yes,{registered}"
    )


def test_the_export_reads_the_clients_as_it_streams(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    response = browser_for("Marketing").get("/clients/export.csv")
    late = known_client(first_name="Late")  # registered after the response was made

    assert late.first_name in csv_text(response)


def test_only_marketing_exports_and_sees_the_link(
    browser_for: Callable[..., Browser], known_client: Callable[..., Client]
) -> None:
    known_client()
    for team in ("Sales", "Customer Relations", "Operations", None):
        browser = browser_for(team, f"export{team}")
        assert browser.get("/clients/export.csv").status_code == 403, team
        if team in ("Sales", "Customer Relations"):
            assert "/clients/export.csv" not in html(browser.get("/clients/?q=ada")), team

    page = html(browser_for("Marketing").get("/clients/?q=ada lovelace"))
    assert (
        'href="/clients/export.csv?q=ada%20lovelace" download>Download this client as CSV' in page
    )


# --- small things -----------------------------------------------------------------------------


def test_the_favicon_answers_without_a_login(client: Browser) -> None:
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/ensemble/favicon.svg"


@pytest.fixture
def request_log() -> Iterator[list[logging.LogRecord]]:
    """What django.request logs, after its own filters (the django logger does not propagate
    to the root, where caplog listens)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_a_refusal_logs_one_line_without_a_traceback(
    browser_for: Callable[..., Browser], request_log: list[logging.LogRecord]
) -> None:
    assert browser_for("Sales").get("/clients/new/").status_code == 403

    (record,) = request_log
    assert record.levelname == "WARNING"
    assert record.getMessage() == "Forbidden (Permission denied): /clients/new/"
    assert record.exc_info is None


@pytest.mark.parametrize(
    "path",
    [f"/clients/{uuid.uuid4()}/edit/", f"/clients/{uuid.uuid4()}/erase/", "/clients/export.csv"],
)
def test_the_new_pages_send_strangers_to_the_login(client: Browser, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
