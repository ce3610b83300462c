"""The SMTP server misbehaves: it hangs, greets slowly, or dies after accepting a message. A send
never takes longer than EMAIL_TIMEOUT, a failed send is retried visibly, and the email goes out
once (twice at most, with one Message-ID, in the documented window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

import pytest

from tests.chaos.conftest import EMAIL_TIMEOUT, Stack
from tests.chaos.effects import (
    assert_sent_once,
    assert_sent_once_but_for_the_window,
    effects_of_registration,
    once,
    wait_completed,
)
from tests.chaos.shop import person
from tests.support import faults, flows

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

GIVE_UP_MARGIN = 1.5  # seconds past EMAIL_TIMEOUT for the sender to close a silent connection


def _retried_visibly(process_id: UUID) -> list[tuple[object, ...]]:
    """The trace entries that say the send went wrong and was tried again."""
    return [entry for entry in flows.trace_of(process_id) if entry[2] in ("retry", "failure")]


def _assert_abandoned_within_email_timeout(connection: faults.SmtpConnection, stack: Stack) -> None:
    """The sender closed a connection that got no answer within EMAIL_TIMEOUT (and a margin)."""
    assert connection.closed.wait(EMAIL_TIMEOUT + GIVE_UP_MARGIN), stack.logs()
    assert time.monotonic() - connection.opened_at < EMAIL_TIMEOUT + GIVE_UP_MARGIN


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_smtp_that_hangs_times_out_the_send_which_is_retried_and_completes_once(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given the SMTP server accepts connections and never answers
    smtp.hang()
    ada = person("smtp-hang")
    started = stack.shop.register(ada)
    assert started.status == 202, started.body

    # When the welcome email is sent, the sender gives up within EMAIL_TIMEOUT
    _assert_abandoned_within_email_timeout(smtp.wait_for_connection(1), stack)

    # Then once the server answers again, the process completes, the retry in its trace
    smtp.normal()
    process_id = UUID(started.body["process_id"])
    wait_completed([process_id])
    assert _retried_visibly(process_id) != []
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["choreography"], indirect=True)
def test_smtp_that_greets_too_slowly_times_out_the_send_which_is_retried_and_completes_once(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given the SMTP server greets only after twice EMAIL_TIMEOUT
    smtp.slow_greeting(EMAIL_TIMEOUT * 2)
    ada = person("smtp-slow")
    started = stack.shop.register(ada)
    assert started.status == 202, started.body

    # When the welcome email is sent, the sender gives up within EMAIL_TIMEOUT
    _assert_abandoned_within_email_timeout(smtp.wait_for_connection(1), stack)

    # Then once the server greets promptly, the process completes, the retry in its trace
    smtp.normal()
    process_id = UUID(started.body["process_id"])
    wait_completed([process_id])
    assert _retried_visibly(process_id) != []
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["choreography"], indirect=True)
def test_smtp_that_dies_right_after_its_250_has_the_email_once_and_the_process_completes(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given the SMTP server closes the connection right after accepting a message (250)
    smtp.dies_after_data(reply_first=True)
    ada = person("smtp-dies-after-250")

    # When a client registers
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    smtp.wait_for_copies(ada["email"], 1)
    smtp.normal()

    # Then the process completes, and the email was sent once: the 250 was the answer
    wait_completed([started.body["process_id"]])
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["orchestration", "choreography"], indirect=True)
def test_smtp_that_dies_before_answering_the_data_gets_the_same_email_again_at_most(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given the SMTP server takes a whole message and exits before replying to it
    smtp.dies_after_data(reply_first=False)
    ada = person("smtp-dies-before-250")

    # When a client registers
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    smtp.wait_for_copies(ada["email"], 1)
    smtp.normal()

    # Then the send is retried visibly and the process completes, every effect once
    process_id = UUID(started.body["process_id"])
    wait_completed([process_id])
    assert _retried_visibly(process_id) != []
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    # and the server has the email twice at most, both copies with the one Message-ID (the
    # documented window: accepted by the server, not recorded by the sender)
    assert_sent_once_but_for_the_window(smtp, ada["email"])
