"""Erasure wins a race with the welcome email: a client erased while the email is being sent
leaves no personal data in any table once both processes are over."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from integration.models import Process
from tests.chaos.conftest import MODES, Stack
from tests.chaos.effects import rows_holding, wait_completed, wait_finished
from tests.chaos.shop import person
from tests.support import faults, flows

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_erasure_during_the_welcome_email_leaves_no_personal_data_in_any_table(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    # Given a registration whose welcome email is being sent, slowly
    smtp.slow_greeting(1.5)
    ada = person("erased")
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    smtp.wait_for_connection(1)

    # When the client is erased at once
    erasure = stack.shop.erase(started.body["client_id"])
    assert erasure.status == 202, erasure.body
    smtp.normal()

    # Then the erasure completes, and the registration ends: completed, or failed or closed
    # with its reason in its trace
    wait_completed([erasure.body["process_id"]])
    registration = wait_finished(started.body["process_id"])
    if registration.status != "completed":
        reasons = [e for e in flows.trace_of(registration.id) if e[2] in ("failure", "action")]
        assert reasons != [], flows.trace_of(registration.id)
    assert Process.objects.filter(status__in=["running", "stuck"]).count() == 0
    # and no table holds the email or the names
    assert rows_holding([ada["email"], ada["first_name"], ada["last_name"]]) == {}
    # and the email went out at most once
    assert len(smtp.copies_to(ada["email"])) <= 1
    # and the client is gone from the API
    assert stack.shop.details(started.body["client_id"]).status == 404
