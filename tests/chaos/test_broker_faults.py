"""The broker fails while the shop posts: killed (a Redis comes back empty), paused (connections
open, no answer), or dropping every connection. The shop is answered within 1 s all the same, and
every process completes once the broker is back (the database holds every message)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.chaos.conftest import MODES, Broker, Stack, without
from tests.chaos.effects import assert_sent_once, effects_of_registration, once, wait_completed
from tests.chaos.shop import Answer, person
from tests.support import faults

pytestmark = [pytest.mark.chaos, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

POSTS = 4
ANSWER_WITHIN = 1.0  # seconds, while the broker is down or hung (shop-api.md, Outages)


def _stack_on(broker: Broker, launch: Callable[..., Stack], chaos_env: dict[str, str]) -> Stack:
    # Everything Redis-backed the product uses is on this broker: no separate channel layer.
    env = without(chaos_env, "CHANNEL_LAYER_URL", "CELERY_RESULT_BACKEND")
    env.update(CELERY_BROKER_URL=broker.url, CELERY_RESULT_BACKEND=broker.result_backend)
    return launch(env)


def _accepted_in_time(answers: list[Answer]) -> list[tuple[int, bool]]:
    return [(answer.status, answer.seconds < ANSWER_WITHIN) for answer in answers]


def _assert_all_registered_once(
    registrations: list[tuple[dict[str, str], Answer]], mode: str, smtp: faults.SmtpServer
) -> None:
    wait_completed(started.body["process_id"] for _, started in registrations)
    for someone, started in registrations:
        counts = effects_of_registration(started.body["client_id"], someone["email"], mode)
        assert counts == once(mode)
        assert_sent_once(smtp, someone["email"])


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_broker_killed_during_posts_answers_in_time_and_every_process_completes_once_it_is_back(
    mode: str,
    broker: Broker,
    launch: Callable[..., Stack],
    chaos_env: dict[str, str],
    smtp: faults.SmtpServer,
) -> None:
    stack = _stack_on(broker, launch, chaos_env)
    # Given the broker crashed
    broker.kill()

    # When the shop registers clients
    people = [person(f"broker-killed-{n}") for n in range(POSTS)]
    answers = [stack.shop.register(someone) for someone in people]

    # Then each is accepted within 1 s
    assert _accepted_in_time(answers) == [(202, True)] * POSTS, answers
    # and once the broker is back (empty), every process completes, every effect once
    broker.restart()
    _assert_all_registered_once(list(zip(people, answers, strict=True)), mode, smtp)


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_broker_paused_during_posts_answers_in_time_and_every_process_completes_once_it_resumes(
    mode: str,
    broker: Broker,
    launch: Callable[..., Stack],
    chaos_env: dict[str, str],
    smtp: faults.SmtpServer,
) -> None:
    stack = _stack_on(broker, launch, chaos_env)
    # Given the broker is hung: it holds its connections and answers nothing
    broker.pause()
    try:
        # When the shop registers clients
        people = [person(f"broker-paused-{n}") for n in range(POSTS)]
        answers = [stack.shop.register(someone) for someone in people]
    finally:
        broker.resume()

    # Then each was accepted within 1 s
    assert _accepted_in_time(answers) == [(202, True)] * POSTS, answers
    # and once it answers again, every process completes, every effect once
    _assert_all_registered_once(list(zip(people, answers, strict=True)), mode, smtp)


@pytest.mark.parametrize("mode", ["choreography"], indirect=True)
def test_broker_closing_every_connection_during_posts_loses_nothing(
    mode: str,
    broker: Broker,
    launch: Callable[..., Stack],
    chaos_env: dict[str, str],
    smtp: faults.SmtpServer,
) -> None:
    stack = _stack_on(broker, launch, chaos_env)
    # Given the broker closes every client connection before each registration
    people = [person(f"broker-closed-{n}") for n in range(POSTS)]
    answers = []
    for someone in people:
        broker.close_connections()
        answers.append(stack.shop.register(someone))

    # Then each is accepted within 1 s
    assert _accepted_in_time(answers) == [(202, True)] * POSTS, answers
    # and every process completes, every effect once
    _assert_all_registered_once(list(zip(people, answers, strict=True)), mode, smtp)
