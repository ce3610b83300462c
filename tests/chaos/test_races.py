"""Requests that race for one email, sent all at once from threads to a real web process: one
wins, every other is a 409 naming the client that holds the email, never a 500."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from crm.models import Client
from tests.chaos.conftest import MODES, Stack
from tests.chaos.effects import assert_sent_once, effects_of_registration, once, wait_completed
from tests.chaos.shop import all_at_once, person
from tests.support import faults

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_six_clients_changed_at_once_to_one_new_email_one_wins_five_get_409_naming_the_winner(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given six registered clients
    registered = [stack.shop.register(person(f"race-{n}")) for n in range(6)]
    assert [answer.status for answer in registered] == [202] * 6
    wait_completed(answer.body["process_id"] for answer in registered)
    contested = person("contested")["email"]

    # When each of them is changed to the same new email at the same moment
    answers = all_at_once(
        [
            functools.partial(stack.shop.change, answer.body["client_id"], {"email": contested})
            for answer in registered
        ]
    )

    # Then exactly one change is accepted and the five others are 409s naming its client
    assert sorted(answer.status for answer in answers) == [202] + [409] * 5, answers
    winner = next(answer for answer in answers if answer.status == 202)
    refusals = [answer for answer in answers if answer.status == 409]
    assert {(a.content_type, a.body["client_id"]) for a in refusals} == {
        ("application/problem+json", winner.body["client_id"])
    }
    # and once the change has run, the email belongs to that client alone
    wait_completed([winner.body["process_id"]])
    assert [str(c.pk) for c in Client.objects.filter(email=contested)] == [winner.body["client_id"]]


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_twenty_registrations_of_one_email_at_once_make_one_client_and_nineteen_409s(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    ada = person("twenty")

    # When the same registration is posted twenty times at the same moment
    answers = all_at_once([lambda: stack.shop.register(ada)] * 20)

    # Then one is accepted and nineteen are 409s naming the client it registers
    assert sorted(answer.status for answer in answers) == [202] + [409] * 19, answers
    accepted = next(answer for answer in answers if answer.status == 202)
    refusals = [answer for answer in answers if answer.status == 409]
    assert {(a.content_type, a.body["client_id"]) for a in refusals} == {
        ("application/problem+json", accepted.body["client_id"])
    }
    # and the one process completes: one client, one account, one welcome email
    wait_completed([accepted.body["process_id"]])
    assert effects_of_registration(accepted.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])
