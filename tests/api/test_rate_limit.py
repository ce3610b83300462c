"""API_RATE_LIMIT requests per token, answered 429 with Retry-After beyond it, counted in the
cache every web process shares."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from shop_api import views
from tests.api.conftest import Shop, issue
from tests.support import processes
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/clients/?email=ada@example.com"
WINDOW_START = 1_800_000_000.0  # a multiple of 60


@pytest.fixture
def clock(monkeypatch: Any) -> list[float]:
    now = [WINDOW_START + 45]
    monkeypatch.setattr(views.time, "time", lambda: now[0])
    return now


def test_beyond_the_limit_a_token_gets_429_with_retry_after(
    shop: Shop, other_shop: Shop, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_LIMIT = "3/minute"

    answers = [shop.get(SEARCH) for _ in range(4)]

    assert [answer.status for answer in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert (limited.content_type, limited.headers["Retry-After"]) == (
        "application/problem+json",
        "15",
    )
    assert (limited.body["status"], limited.body["title"]) == (429, "Too many requests")
    assert other_shop.get(SEARCH).status == 200  # per token


def test_every_request_counts_and_the_next_window_starts_afresh(
    shop: Shop, settings: Any, clock: list[float]
) -> None:
    settings.API_RATE_LIMIT = "2/minute"
    shop.post("/api/v1/clients/", raw=b"{nope")
    shop.get(f"/api/v1/processes/{'0' * 8}-0000-4000-8000-{'0' * 12}/")
    assert shop.get(SEARCH).status == 429

    clock[0] += 15

    assert shop.get(SEARCH).status == 200


def test_zero_turns_the_limit_off(shop: Shop, settings: Any) -> None:
    settings.API_RATE_LIMIT = None

    assert {shop.get(SEARCH).status for _ in range(30)} == {200}


def test_rates_read_like_drf() -> None:
    assert views.parse_rate("600/minute") == (600, 60)
    assert views.parse_rate("10/s") == (10, 1)
    assert views.parse_rate("1000/hour") == (1000, 3600)
    assert views.parse_rate("5/day") == (5, 86400)


def test_the_counter_lives_where_every_process_sees_it() -> None:
    assert not isinstance(caches["default"], LocMemCache)


@pytest.fixture(scope="module")
def limited_web(child_env: dict[str, str]) -> Iterator[str]:
    port = processes.free_port()
    web = processes.start_web(port, {**child_env, "API_RATE_LIMIT": "4/minute"})
    base = f"http://127.0.0.1:{port}"
    with processes.running(web):
        processes.wait_for_http(f"{base}/healthz", web)
        yield base


def _http_status(url: str, raw_token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {raw_token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_web_processes_count_together(limited_web: str, settings: Any) -> None:
    settings.API_RATE_LIMIT = "4/minute"
    issued = issue("shop")
    shop = Shop(issued)
    # the four requests must fall in one window
    wait_until(lambda: time.time() % 60 <= 50, timeout=15, interval=0.5)

    here = [shop.get(SEARCH).status for _ in range(2)]
    there = [_http_status(limited_web + SEARCH, issued.raw) for _ in range(3)]

    assert (here, there) == ([200, 200], [200, 200, 429])
    assert shop.get(SEARCH).status == 429
