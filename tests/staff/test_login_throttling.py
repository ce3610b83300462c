"""Login throttling (django-axes) on /accounts/login/ and /admin/login/: after the failure limit
for a username or a client address, every attempt is refused with 429 until the lockout ends;
each lockout is audited; the shop API's bearer tokens are not counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client, override_settings
from django.utils import timezone

from config.env import ConfigError, load
from integration.models import AuditEntry
from shop_api.auth import token_issue
from staff.lockout import duration_text

pytestmark = pytest.mark.django_db

LIMIT = 3
PASSWORD = "right-horse-battery-staple"
WRONG = "wrong-password"
LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]
FORM_ERRORS = {
    "/accounts/login/": "Please enter a correct username and password.",
    "/admin/login/": "Please enter the correct username and password for a staff account.",
}
# A successful login redirects: to LOGIN_REDIRECT_URL, or into the admin.
LOGGED_IN = 302
REFUSED = 429


@pytest.fixture(autouse=True)
def throttled() -> Iterator[None]:
    """Axes fully on, with a small limit and the configured 15-minute lockout."""
    with override_settings(
        AXES_ENABLED=True, AXES_FAILURE_LIMIT=LIMIT, AXES_COOLOFF_TIME=timedelta(seconds=900)
    ):
        yield


def staff_member(username: str) -> AbstractBaseUser:
    return get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)


def log_in(page: str, username: str, password: str, address: str = "127.0.0.1") -> Any:
    """One login attempt from a fresh browser at `address`; the test client's response."""
    return Client(REMOTE_ADDR=address).post(page, {"username": username, "password": password})


def status(page: str, username: str, password: str, address: str = "127.0.0.1") -> int:
    return int(log_in(page, username, password, address).status_code)


def lockouts() -> int:
    return AuditEntry.objects.filter(action="login.lockout").count()


def lockout_ages(age: timedelta) -> None:
    """Move every failed attempt `age` into the past, as if that much time had gone by."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - age)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_a_wrong_password_before_the_limit_shows_the_form_error(page: str) -> None:
    staff_member("ada")

    for _ in range(LIMIT - 1):
        answer = log_in(page, "ada", WRONG)
        assert answer.status_code == 200
        assert FORM_ERRORS[page] in answer.content.decode()

    assert status(page, "ada", PASSWORD) == LOGGED_IN


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_limit_locks_the_username_even_with_the_right_password(page: str) -> None:
    staff_member("ada")

    statuses = [status(page, "ada", WRONG) for _ in range(LIMIT)]
    refused = log_in(page, "ada", PASSWORD)

    assert statuses == [200] * (LIMIT - 1) + [REFUSED]
    assert refused.status_code == REFUSED
    body = refused.content.decode()
    assert "Login locked" in body
    assert "the account or address is locked" in body
    assert "for 15 minutes after the last failed attempt" in body
    assert refused.wsgi_request.user.is_authenticated is False
    assert lockouts() == 1


def test_both_pages_share_one_count() -> None:
    staff_member("ada")

    statuses = [status(page, "ada", WRONG) for page in ("/accounts/login/", "/admin/login/")]
    statuses.append(status("/accounts/login/", "ada", WRONG))

    assert statuses == [200, 200, REFUSED]
    assert status("/admin/login/", "ada", PASSWORD) == REFUSED


def test_a_username_is_locked_from_every_address() -> None:
    staff_member("ada")
    staff_member("bob")

    statuses = [status("/accounts/login/", "ada", WRONG, f"10.0.0.{n}") for n in range(1, 4)]

    assert statuses == [200, 200, REFUSED]
    assert status("/accounts/login/", "ada", PASSWORD, "10.0.0.99") == REFUSED
    # The addresses themselves are not locked: one failure each, below the limit.
    assert status("/accounts/login/", "bob", PASSWORD, "10.0.0.1") == LOGGED_IN
    assert lockouts() == 1


def test_an_address_is_locked_for_every_username() -> None:
    staff_member("carol")

    statuses = [
        status("/accounts/login/", username, WRONG, "10.0.0.9")
        for username in ("ada", "bob", "nobody")
    ]

    assert statuses == [200, 200, REFUSED]
    assert status("/accounts/login/", "carol", PASSWORD, "10.0.0.9") == REFUSED
    assert status("/admin/login/", "carol", PASSWORD, "10.0.0.9") == REFUSED
    assert status("/accounts/login/", "carol", PASSWORD, "10.0.0.10") == LOGGED_IN
    assert lockouts() == 1


def test_the_lockout_lasts_the_cool_off_and_no_longer() -> None:
    staff_member("ada")
    for _ in range(LIMIT):
        status("/accounts/login/", "ada", WRONG)

    lockout_ages(timedelta(seconds=900 - 5))
    assert status("/accounts/login/", "ada", PASSWORD) == REFUSED

    lockout_ages(timedelta(seconds=900 + 1))
    assert status("/accounts/login/", "ada", PASSWORD) == LOGGED_IN
    assert AccessAttempt.objects.count() == 0


def test_refused_attempts_do_not_extend_the_lockout() -> None:
    staff_member("ada")
    for _ in range(LIMIT):
        status("/accounts/login/", "ada", WRONG)
    lockout_ages(timedelta(seconds=600))

    assert [status("/accounts/login/", "ada", WRONG) for _ in range(3)] == [REFUSED] * 3

    lockout_ages(timedelta(seconds=900 + 1))
    assert status("/accounts/login/", "ada", PASSWORD) == LOGGED_IN


def test_a_successful_login_does_not_wipe_the_failures_of_the_window() -> None:
    # given failures from one address at one person's password, and another person's account
    staff_member("ada")
    staff_member("mallory")
    for _ in range(LIMIT - 1):
        status("/accounts/login/", "ada", WRONG, "10.0.0.9")

    # when the other person logs in from that address between guesses
    assert status("/accounts/login/", "mallory", PASSWORD, "10.0.0.9") == LOGGED_IN

    # then the next guess still reaches the limit
    assert status("/accounts/login/", "ada", WRONG, "10.0.0.9") == REFUSED


def test_each_lockout_is_audited_once() -> None:
    staff_member("ada")
    for _ in range(LIMIT):
        status("/admin/login/", "ada", WRONG, "10.0.0.7")
    # Refused attempts during the lockout are not new lockouts.
    status("/admin/login/", "ada", WRONG, "10.0.0.7")
    status("/accounts/login/", "ada", PASSWORD, "10.0.0.8")

    entries = list(
        AuditEntry.objects.filter(action="login.lockout").values_list("actor", "target", "detail")
    )
    assert entries == [("ada", "ada", {"ip_address": "10.0.0.7", "path": "/admin/login/"})]

    lockout_ages(timedelta(seconds=900 + 1))
    statuses = [status("/accounts/login/", "ada", WRONG, "10.0.0.7") for _ in range(LIMIT)]

    assert statuses == [200, 200, REFUSED]
    assert lockouts() == 2


def test_the_bearer_token_api_is_not_counted() -> None:
    staff_member("ada")
    raw = token_issue(name="shop").raw
    process = f"/api/v1/processes/{uuid.uuid4()}/"
    api = Client()

    for _ in range(LIMIT + 2):
        assert api.get(process, HTTP_AUTHORIZATION="Bearer ens_not-a-token").status_code == 401
    assert AccessAttempt.objects.count() == 0
    assert lockouts() == 0

    for _ in range(LIMIT):
        status("/accounts/login/", "ada", WRONG)
    # The address is locked for logins; the API answers it as before.
    assert status("/accounts/login/", "ada", PASSWORD) == REFUSED
    assert api.get(process, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404
    assert api.get(process, HTTP_AUTHORIZATION="Bearer ens_not-a-token").status_code == 401
    assert AccessAttempt.objects.get().failures_since_start == LIMIT


def test_force_login_works_with_axes_on() -> None:
    client = Client()
    client.force_login(staff_member("ada"))

    assert client.get("/").status_code == 200
    assert AccessAttempt.objects.count() == 0


def test_the_settings_follow_the_environment() -> None:
    defaults = load({"DEBUG": "1"}, Path("/srv/ensemble"))
    chosen = load({"DEBUG": "1", "LOGIN_FAILURE_LIMIT": "10", "LOGIN_LOCKOUT": "60"}, Path("/"))

    assert (defaults.login_failure_limit, defaults.login_lockout) == (5, 900)
    assert (chosen.login_failure_limit, chosen.login_lockout) == (10, 60)
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("LOGIN_FAILURE_LIMIT", "0", "LOGIN_FAILURE_LIMIT: must be greater than 0, got '0'"),
        ("LOGIN_FAILURE_LIMIT", "five", "LOGIN_FAILURE_LIMIT: expected a whole number, got 'five'"),
        ("LOGIN_LOCKOUT", "-1", "LOGIN_LOCKOUT: must be greater than 0, got '-1'"),
        ("LOGIN_LOCKOUT", "1.5", "LOGIN_LOCKOUT: expected a whole number, got '1.5'"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load({"DEBUG": "1", name: value}, Path("/srv/ensemble"))

    assert (error.value.name, str(error.value)) == (name, problem)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(900, "15 minutes"), (60, "1 minute"), (5400, "1 hour 30 minutes"), (45, "45 seconds")],
)
def test_the_lockout_page_says_how_long_in_words(seconds: int, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text
