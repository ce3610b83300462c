"""PostgreSQL becomes unreachable (a proxy in front of it closes every connection and refuses new
ones) and comes back: during requests, and during a step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from crm.models import Client
from integration.models import Process
from tests.chaos.conftest import Stack, proxied_database_url
from tests.chaos.effects import (
    assert_sent_once_but_for_the_window,
    effects_of_registration,
    once,
    wait_completed,
)
from tests.chaos.shop import Answer, person
from tests.support import faults
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

OUTAGE = 4.0  # seconds the database stays unreachable
UNAVAILABLE_WITHIN = 2.0  # an answer while it is unreachable (shop-api.md, Outages)


def _is_unavailable_problem(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.content_type == "application/problem+json"
        and bool(answer.retry_after)
        and isinstance(answer.body, dict)
        and answer.body.get("status") == 503
    )


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_database_cut_during_requests_answers_503_in_time_and_the_shops_retries_complete(
    mode: str,
    database_proxy: faults.TcpProxy,
    launch: Callable[..., Stack],
    chaos_env: dict[str, str],
    smtp: faults.SmtpServer,
) -> None:
    # Given every process reaches the database through the proxy, and the shop posts
    # registrations one after another, each with its own Idempotency-Key
    stack = launch({**chaos_env, "DATABASE_URL": proxied_database_url(database_proxy)})
    sent: list[tuple[float, dict[str, Any], str, Answer]] = []
    stop = threading.Event()

    def shop_posting() -> None:
        n = 0
        while not stop.is_set():
            someone, key = person(f"db-cut-{n}"), f"db-cut-{n}"
            at = time.monotonic()
            sent.append((at, someone, key, stack.shop.register(someone, key=key)))
            n += 1

    poster = threading.Thread(target=shop_posting, daemon=True)
    poster.start()
    try:
        wait_until(lambda: len(sent) >= 3 and sent[0][3].status == 202, timeout=30)
        first = sent[0][3].body["process_id"]
        # When the database is cut while requests are in flight, and restored after a while
        database_proxy.cut()
        cut_at = time.monotonic()
        read_while_cut = stack.shop.process(first)
        # the outage lasts OUTAGE seconds on purpose: a fault's length, not a wait for a result
        time.sleep(max(0.0, cut_at + OUTAGE - time.monotonic()))
        restored_at = time.monotonic()
        database_proxy.restore()
        wait_until(
            lambda: sum(1 for at, *_, a in sent if at > restored_at and a.status == 202) >= 3,
            timeout=30,
            describe=stack.logs,
        )
    finally:
        stop.set()
        poster.join(timeout=60)

    # Then every answer was a 202, or a 503 problem with Retry-After within 2 s
    answers = [answer for *_, answer in sent] + [read_while_cut]
    assert [a for a in answers if a.status != 202 and not _is_unavailable_problem(a)] == []
    assert [a for a in answers if a.status == 503 and a.seconds >= UNAVAILABLE_WITHIN] == []
    # and what was asked while the database was away was answered 503
    during = [a for at, *_, a in sent if cut_at + 0.1 < at and at + a.seconds < restored_at]
    assert during != [] and read_while_cut.status == 503
    assert [a for a in during if not _is_unavailable_problem(a)] == []

    # When the shop retries each 503 with its Idempotency-Key
    finals = {
        key: (someone, stack.shop.register(someone, key=key) if answer.status == 503 else answer)
        for _, someone, key, answer in sent
    }
    # Then each is accepted, or (had the first attempt committed after all) a 409 naming the
    # client registered for the email
    assert {
        k: (a.status, a.body) for k, (_, a) in finals.items() if a.status not in (202, 409)
    } == {}
    refused = [a.body for _, a in finals.values() if a.status == 409]
    assert [body for body in refused if "client_id" not in body] == []
    # and every registration completes: each email belongs to the client the shop was told
    for _, answer in finals.values():
        if answer.status == 202:
            wait_completed([answer.body["process_id"]])
    told = {someone["email"]: answer.body["client_id"] for someone, answer in finals.values()}
    stored = Client.objects.filter(email__in=list(told)).values_list("email", "pk")
    assert {email: str(pk) for email, pk in stored} == told
    unfinished = Process.objects.exclude(status="completed").values_list("id", "status")
    assert list(unfinished) == []


@pytest.mark.parametrize("mode", ["orchestration", "choreography"], indirect=True)
def test_database_cut_during_a_step_heals_and_the_process_completes_once(
    mode: str,
    database_proxy: faults.TcpProxy,
    launch: Callable[..., Stack],
    chaos_env: dict[str, str],
    smtp: faults.SmtpServer,
) -> None:
    # Given every process reaches the database through the proxy, and the welcome email of a
    # registration is being sent (slowly)
    stack = launch({**chaos_env, "DATABASE_URL": proxied_database_url(database_proxy)})
    smtp.slow_greeting(1.0)
    ada = person("db-step")
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    smtp.wait_for_connection(1)

    # When the database is cut mid-step, and restored after a while
    database_proxy.cut()
    time.sleep(OUTAGE)  # the fault's length, on purpose: nothing is awaited here
    database_proxy.restore()
    smtp.normal()

    # Then the process completes, every database effect once
    wait_completed([started.body["process_id"]])
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    # and the email went once — twice at most with the same Message-ID, when the cut fell
    # between the server accepting it and the record that it was sent
    assert_sent_once_but_for_the_window(smtp, ada["email"])
