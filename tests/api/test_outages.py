"""Outages never hold an answer (shop-api.md "Outages", DESIGN rule 11).

- Broker down or paused: a registration answers 202 within 1 s; its first message waits, pending,
  for the sweeper.
- Database unreachable: every API answer is a 503 problem with Retry-After, staff pages a plain
  503 page, and /readyz says 503 naming the database, within 1 s even when the database hangs.
- The rate limit's cache unreachable: requests go through, counted in the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client as Browser

from common import views as common_views
from integration import actions
from integration.core import relay
from integration.models import Delivery, DeliveryStatus, Step, StepStatus
from shop_api import rate_counts
from tests.api.conftest import MODES, Shop
from tests.support.outages import broker_away, closed_port, silent_listener

pytestmark = pytest.mark.django_db

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
SOMEONE = "6f0c9a57-1f7e-4d1e-9d2a-2f1b8f2f4b11"
REFUSED = "connection to server at 127.0.0.1 failed: Connection refused"


def driver_operational_error() -> type[Exception]:
    """psycopg's or sqlite3's OperationalError: what the driver raises when the server is away."""
    wrapper: Any = connections["default"]
    return wrapper.Database.OperationalError


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- the broker ---------------------------------------------------------------------------------


@pytest.fixture
def breaker_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "_broker_down_until", 0.0)


@pytest.mark.parametrize("broker", ["refusing", "silent"])
@pytest.mark.parametrize("mode", MODES)
def test_a_registration_answers_202_within_a_second_while_the_broker_is_away(
    shop: Shop,
    mode: str,
    broker: str,
    breaker_closed: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    actions.mode_switch(mode=mode, changed_by="test")
    with broker_away(broker) as app:
        monkeypatch.setattr(relay, "app", app)

        # when the shop registers Ada (the relay publishes after commit, as in production)
        with django_capture_on_commit_callbacks(execute=True):
            answer, seconds = timed(lambda: shop.post("/api/v1/clients/", ADA))

    # then the answer came at once, and the work waits in the database for the sweeper
    assert (answer.status, answer.body["status"]) == (202, "running")
    assert seconds < 1.0
    assert relay.broker_suspected_down()
    process_id = answer.body["process_id"]
    if mode == "orchestration":
        waiting = list(Step.objects.filter(process_id=process_id).values_list("status", flat=True))
        assert waiting == [StepStatus.PENDING]
    else:
        waiting = list(
            Delivery.objects.filter(process_id=process_id).values_list("status", flat=True)
        )
        assert waiting and set(waiting) == {DeliveryStatus.PENDING}


def test_while_the_breaker_is_open_the_next_registration_does_not_try_the_broker(
    shop: Shop,
    breaker_closed: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with broker_away("silent") as app:
        monkeypatch.setattr(relay, "app", app)
        # given a registration whose publish timed out, which opened the breaker
        with django_capture_on_commit_callbacks(execute=True):
            shop.post("/api/v1/clients/", ADA)
        assert relay.broker_suspected_down()
        tries: list[str] = []
        monkeypatch.setattr(app, "send_task", lambda name, *a, **k: tries.append(name))

        # when the next one commits
        with django_capture_on_commit_callbacks(execute=True):
            answer = shop.post("/api/v1/clients/", {**ADA, "email": "grace@example.com"})

    # then it is accepted and its command waits for the sweeper: the broker was not tried (no
    # socket timeout paid)
    assert answer.status == 202
    assert tries == []
    step = Step.objects.get(process_id=answer.body["process_id"])
    assert step.status == StepStatus.PENDING


# --- the database -------------------------------------------------------------------------------


@pytest.fixture
def database_unreachable(db: Any) -> Iterator[None]:
    """From now on every query fails as PostgreSQL's client fails when the server is away (the
    driver's own OperationalError, which Django wraps), and so does every new connection."""
    wrapper_class = type(connections["default"])
    refused = driver_operational_error()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise refused(REFUSED)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wrapper_class, "create_cursor", refuse)
        patch.setattr(wrapper_class, "get_new_connection", refuse)
        yield


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/clients/", ADA),
        ("GET", "/api/v1/clients/?email=ada@example.com", None),
        ("GET", f"/api/v1/clients/{SOMEONE}/", None),
        ("PATCH", f"/api/v1/clients/{SOMEONE}/", {"phone": "+44 20 7946 0001"}),
        ("POST", f"/api/v1/clients/{SOMEONE}/purchases/", {"order_ref": "A-1", "total": "9.99"}),
        ("GET", f"/api/v1/processes/{SOMEONE}/", None),
    ],
)
def test_every_endpoint_answers_503_problem_with_retry_after_while_the_database_is_away(
    shop: Shop, database_unreachable: None, method: str, path: str, body: Any
) -> None:
    answer, seconds = timed(lambda: shop.request(method, path, body))

    assert (answer.status, answer.content_type, answer.headers["Retry-After"]) == (
        503,
        "application/problem+json",
        "5",
    )
    assert answer.body == {
        "type": "https://ensemble.invalid/problems/database-unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The database is unreachable; nothing was done. Retry after Retry-After seconds.",
        "errors": {},
    }
    assert seconds < 2.0


def test_a_staff_page_is_a_plain_503_page_while_the_database_is_away(
    db: Any, settings: Any
) -> None:
    user = get_user_model().objects.create_user("carer", password="x" * 16, is_staff=True)
    browser = Browser()
    browser.force_login(user)
    settings.DEBUG = True  # even in debug mode: no traceback page

    with pytest.MonkeyPatch.context() as patch:
        refused = driver_operational_error()

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise refused(REFUSED)

        patch.setattr(type(connections["default"]), "create_cursor", refuse)
        response = browser.get("/")

    page = response.content.decode()
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>Ensemble is temporarily unavailable</h1>" in page
    assert "Traceback" not in page and REFUSED not in page


def test_readyz_answers_503_naming_the_database_when_it_refuses(
    database_unreachable: None,
) -> None:
    response, seconds = timed(lambda: Browser().get("/readyz"))

    ready = response.json()
    assert (response.status_code, ready["status"], ready["unavailable"]) == (
        503,
        "unavailable",
        ["database"],
    )
    assert ready["checks"]["database"]["ok"] is False
    assert ready["checks"]["database"]["error"] == f"OperationalError: {REFUSED}"
    assert ready["checks"]["broker"]["ok"] is True
    assert seconds < 1.0


@pytest.fixture
def database_hangs(db: Any) -> Iterator[None]:
    """New connections hang (a server that accepts and never answers) until the test ends."""
    released = threading.Event()
    refused = driver_operational_error()

    def hang(*args: Any, **kwargs: Any) -> Any:
        released.wait(timeout=30)
        raise refused("timeout expired")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(connections["default"]), "get_new_connection", hang)
        try:
            yield
        finally:
            released.set()


def test_readyz_answers_within_a_second_when_the_database_hangs(database_hangs: None) -> None:
    response, seconds = timed(lambda: Browser().get("/readyz"))

    ready = response.json()
    assert (response.status_code, ready["unavailable"]) == (503, ["database"])
    assert ready["checks"]["database"] == {
        "ok": False,
        "ms": 800.0,
        "error": "no answer within 0.8 s",
    }
    assert seconds < 1.0


def test_readyz_answers_within_a_second_naming_a_silent_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with broker_away("silent") as app:
        monkeypatch.setattr(common_views, "celery_app", app)
        response, seconds = timed(lambda: Browser().get("/readyz"))

    ready = response.json()
    assert (response.status_code, ready["unavailable"]) == (503, ["broker"])
    assert ready["checks"]["database"]["ok"] is True
    assert ready["checks"]["broker"]["error"].startswith("OperationalError: ")
    assert seconds < 1.0


def test_readyz_answers_200_when_everything_answers() -> None:
    response = Browser().get("/readyz")

    ready = response.json()
    assert (response.status_code, ready["status"]) == (200, "ok")
    assert {name: check["ok"] for name, check in ready["checks"].items()} == {
        "database": True,
        "broker": True,
    }


# --- the rate limit's cache ---------------------------------------------------------------------


@pytest.fixture
def cache_breaker_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rate_counts, "_cache_down_until", 0.0)
    monkeypatch.setattr(rate_counts, "_local_counts", {})


@pytest.fixture(params=["refusing", "silent"])
def cache_away(request: pytest.FixtureRequest, settings: Any) -> Iterator[None]:
    """The default cache is Redis at a loopback port that refuses or never answers."""
    with silent_listener() as silent_port:
        port = closed_port() if request.param == "refusing" else silent_port
        settings.CACHES = {
            "default": {
                **settings.CACHES["default"],
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{port}/0",
                "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
            }
        }
        yield


def test_with_its_cache_away_the_rate_limit_counts_in_the_process(
    shop: Shop, settings: Any, cache_breaker_closed: None, cache_away: None
) -> None:
    settings.API_RATE_LIMIT = "2/minute"
    search = "/api/v1/clients/?email=ada@example.com"

    answers, seconds = timed(lambda: [shop.get(search) for _ in range(3)])

    assert [answer.status for answer in answers] == [200, 200, 429]
    assert rate_counts.cache_suspected_down()
    assert seconds < 1.0


def test_with_its_cache_away_a_registration_goes_through(
    shop: Shop, settings: Any, cache_breaker_closed: None, cache_away: None
) -> None:
    settings.API_RATE_LIMIT = "600/minute"

    answer = shop.post("/api/v1/clients/", ADA)

    assert (answer.status, answer.body["status"]) == (202, "running")
