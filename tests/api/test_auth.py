"""Bearer tokens: issued once, kept hashed, revocable; a shop token reaches the shop API only,
and sees only the processes it started."""

from __future__ import annotations

import hashlib
import uuid
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from integration.models import ApiToken, Process
from tests.api.conftest import Shop

pytestmark = pytest.mark.django_db

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
SOMEONE = "6f0c9a57-1f7e-4d1e-9d2a-2f1b8f2f4b11"
ENDPOINTS = [
    ("POST", "/api/v1/clients/"),
    ("GET", "/api/v1/clients/?email=ada@example.com"),
    ("GET", f"/api/v1/clients/{SOMEONE}/"),
    ("PATCH", f"/api/v1/clients/{SOMEONE}/"),
    ("POST", f"/api/v1/clients/{SOMEONE}/purchases/"),
    ("POST", f"/api/v1/clients/{SOMEONE}/erasure/"),
    ("GET", f"/api/v1/processes/{SOMEONE}/"),
]


def issue_command(*args: str) -> list[str]:
    out = StringIO()
    call_command("issue_api_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()


def assert_unauthorized(shop: Shop, method: str, path: str) -> None:
    answer = shop.request(method, path, ADA)
    assert (answer.status, answer.content_type) == (401, "application/problem+json")
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert (answer.body["status"], answer.body["title"]) == (401, "Unauthorized")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer ens_not-a-token", "Bearer", "Bearer  ", "Basic YWRhOnNlY3JldA==", "Token abc"],
)
def test_every_endpoint_needs_a_valid_token(method: str, path: str, authorization: str) -> None:
    assert_unauthorized(Shop(authorization=authorization), method, path)
    assert Process.objects.count() == 0


def test_a_staff_session_is_not_a_token() -> None:
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)

    answer = client.get("/api/v1/clients/?email=ada@example.com")

    assert (answer.status_code, answer["WWW-Authenticate"]) == (401, "Bearer")


def test_issue_prints_the_token_last_and_keeps_only_its_hash() -> None:
    lines = issue_command("shop")

    raw = lines[-1]
    token = ApiToken.objects.get(name="shop")
    assert (len(lines), raw.startswith("ens_")) == (1, True)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(list(ApiToken.objects.values_list()))
    assert Shop(authorization=f"Bearer {raw}").get(f"/api/v1/processes/{SOMEONE}/").status == 404


def test_issue_with_a_callback_prints_the_secret_before_the_token() -> None:
    secret, raw = issue_command("shop", "--callback-url", "http://127.0.0.1:9/hook")

    token = ApiToken.objects.get(name="shop")
    assert (token.callback_url, token.webhook_secret) == ("http://127.0.0.1:9/hook", secret)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()


def test_issue_refuses_a_name_taken_and_a_url_that_is_not_http() -> None:
    issue_command("shop")

    with pytest.raises(CommandError, match="exists already"):
        issue_command("shop")
    with pytest.raises(CommandError, match="not an http"):
        issue_command("other", "--callback-url", "ftp://127.0.0.1/")


def test_a_revoked_token_is_401_at_once(shop: Shop) -> None:
    assert shop.get(f"/api/v1/processes/{SOMEONE}/").status == 404
    out = StringIO()

    call_command("revoke_api_token", "shop", stdout=out)

    assert out.getvalue() == "revoked shop\n"
    assert ApiToken.objects.get(name="shop").revoked_at is not None
    for method, path in ENDPOINTS:
        assert_unauthorized(shop, method, path)


def test_a_token_revoked_by_another_process_stops_working_within_the_memos_age(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from django.utils import timezone

    from shop_api import auth

    now = [1000.0]
    monkeypatch.setattr(auth._active, "_clock", lambda: now[0])
    settings.RECENT_MAX_AGE = 1.0
    path = f"/api/v1/processes/{SOMEONE}/"
    assert shop.get(path).status == 404  # the token is read and kept

    # revoked in the database, as another web process or the command elsewhere would
    ApiToken.objects.filter(name="shop").update(revoked_at=timezone.now())

    now[0] += 0.9
    assert shop.get(path).status == 404  # still within the second this process keeps it
    now[0] += 0.2
    assert_unauthorized(shop, "GET", path)


def test_revoking_twice_or_an_unknown_token_is_an_error(shop: Shop) -> None:
    call_command("revoke_api_token", "shop", stdout=StringIO())

    with pytest.raises(CommandError, match="revoked already"):
        call_command("revoke_api_token", "shop", stdout=StringIO())
    with pytest.raises(CommandError, match="No token named 'nobody'"):
        call_command("revoke_api_token", "nobody", stdout=StringIO())


def test_a_token_sees_only_the_processes_it_started(shop: Shop, other_shop: Shop) -> None:
    started = shop.post("/api/v1/clients/", ADA).body
    path = f"/api/v1/processes/{started['process_id']}/"

    mine = shop.get(path)
    theirs = other_shop.get(path)

    assert (mine.status, mine.body["id"]) == (200, started["process_id"])
    assert (theirs.status, theirs.content_type) == (404, "application/problem+json")
    assert theirs.body["detail"] == "No process with this id."


def test_a_process_started_by_staff_is_not_the_shops(shop: Shop) -> None:
    from integration import gateway

    process = gateway.client_register(**ADA, initiator=gateway.SYSTEM)

    assert shop.get(f"/api/v1/processes/{process.id}/").status == 404


STAFF_PAGES = [
    "/",
    "/clients/?q=ada",
    "/clients/new/",
    f"/clients/{SOMEONE}/",
    f"/processes/{SOMEONE}/",
    "/admin/",
    "/admin/integration/",
]


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_a_shop_token_counts_for_nothing_on_staff_pages(shop: Shop, page: str) -> None:
    anonymous = Client().get(page)

    with_token = shop.client.get(page, HTTP_AUTHORIZATION=shop.authorization)

    assert with_token.status_code == anonymous.status_code == 302
    assert with_token["Location"] == anonymous["Location"]
    login = "/admin/login/" if page.startswith("/admin/") else "/accounts/login/"
    assert with_token["Location"].startswith(f"{login}?next=")


def test_a_shop_token_cannot_post_to_staff_pages(shop: Shop) -> None:
    answer = shop.client.post("/clients/new/", ADA, HTTP_AUTHORIZATION=shop.authorization)

    assert answer.status_code in (302, 403)
    assert Process.objects.count() == 0


@pytest.mark.parametrize(
    "field", ["id", "client_id", "registered_at", "version", "lifetime_values", "erased"]
)
def test_fields_outside_the_contract_cannot_be_changed(shop: Shop, field: str) -> None:
    client_id = shop.post("/api/v1/clients/", ADA).body["client_id"]

    answer = shop.patch(f"/api/v1/clients/{client_id}/", {"first_name": "A", field: "x"})

    assert (answer.status, answer.body["errors"]) == (
        400,
        {field: ["This field cannot be changed."]},
    )
    assert Process.objects.filter(kind="client_update").count() == 0


def test_fields_outside_the_contract_are_not_set_at_registration(shop: Shop) -> None:
    chosen = str(uuid.uuid4())
    extra: dict[str, Any] = {"id": chosen, "client_id": chosen, "registered_at": "2000-01-01"}

    answer = shop.post("/api/v1/clients/", {**ADA, **extra})

    assert answer.status == 202
    assert answer.body["client_id"] != chosen
    assert set(Process.objects.get().input) == {
        "email",
        "first_name",
        "last_name",
        "phone",
        "company",
        "marketing_consent",
    }
