"""The relay: publishes after commit only, never waits on a broker that is down, and leaves what
it could not publish to the sweeper."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from common import correlation
from integration.core import relay
from integration.models import Step, StepStatus
from tests.integration.conftest import Broker, Sent
from tests.integration.helpers import register

Capture = Callable[..., Any]


def a_message(on_failure: Callable[[], None] | None = None, **fields: Any) -> relay.Outgoing:
    return relay.Outgoing(
        task="integration.run_step",
        args=["step-1"],
        queue="crm",
        correlation_id="process-1",
        on_failure=on_failure,
        **fields,
    )


SENT = Sent("integration.run_step", ["step-1"], "crm", "process-1")


def test_send_now_publishes_once_without_retry_or_result(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        relay.app, "send_task", lambda name, **options: calls.append((name, options))
    )

    assert relay.send_now(a_message(expires=5.0)) is True

    assert calls == [
        (
            "integration.run_step",
            {
                "args": ["step-1"],
                "queue": "crm",
                "headers": {"correlation_id": "process-1"},
                "retry": False,
                "argsrepr": "['step-1']",  # given: Celery's safe repr costs more than the publish
                "kwargsrepr": "{}",
                "expires": 5.0,
                "ignore_result": True,
            },
        )
    ]


def test_without_its_own_correlation_id_a_message_carries_the_current_one(broker: Broker) -> None:
    with correlation.bound("process-9"):
        relay.send_now(relay.Outgoing(task="t", args=[], queue="sales"))

    assert broker.sent == [Sent("t", [], "sales", "process-9")]


@pytest.mark.django_db(transaction=True)
def test_a_message_is_published_when_its_transaction_commits_and_never_on_rollback(
    broker: Broker,
) -> None:
    # when one transaction commits and another rolls back
    with transaction.atomic():
        relay.send_after_commit(a_message())
        assert broker.sent == []  # not before the commit
    with pytest.raises(RuntimeError), transaction.atomic():
        relay.send_after_commit(relay.Outgoing(task="never", args=[], queue="crm"))
        raise RuntimeError("rolled back")

    # then only the committed one was published
    assert broker.sent == [SENT]


def test_a_broker_error_trips_the_breaker_so_the_next_send_fails_at_once(broker: Broker) -> None:
    # given a broker that refuses connections
    broker.refusing = OperationalError("connection refused")

    # when the relay publishes two messages in a row
    first = relay.send_now(a_message())
    second = relay.send_now(a_message())

    # then the first tried and failed, the second did not even try
    assert (first, second) == (False, False)
    assert broker.calls == 1
    assert relay.broker_suspected_down() is True


@pytest.mark.django_db
def test_after_a_failed_publish_on_failure_marks_the_row_for_the_sweeper(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    broker.refusing = OperationalError("connection refused")
    marked: list[str] = []

    with django_capture_on_commit_callbacks(execute=True):
        relay.send_after_commit(a_message(on_failure=lambda: marked.append("first")))
        relay.send_after_commit(a_message(on_failure=lambda: marked.append("second")))

    assert marked == ["first", "second"]
    assert broker.calls == 1


@pytest.mark.django_db
def test_an_error_while_marking_is_logged_not_raised(
    broker: Broker, django_capture_on_commit_callbacks: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    broker.refusing = OperationalError("connection refused")

    def cannot_mark() -> None:
        raise RuntimeError("database away")

    with django_capture_on_commit_callbacks(execute=True):
        relay.send_after_commit(a_message(on_failure=cannot_mark))

    assert "could not mark integration.run_step for the sweeper" in caplog.text


def test_the_breaker_closes_after_its_seconds(
    monkeypatch: pytest.MonkeyPatch, broker: Broker
) -> None:
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(relay, "time", SimpleNamespace(monotonic=lambda: clock.now))
    broker.refusing = OperationalError("connection refused")
    relay.send_now(a_message())
    broker.refusing = None

    clock.now += relay.BREAKER_SECONDS - 0.01
    assert relay.send_now(a_message()) is False
    clock.now += 0.02
    assert relay.send_now(a_message()) is True

    assert broker.sent == [SENT]
    assert broker.calls == 2


@pytest.mark.django_db
def test_a_command_the_broker_refused_waits_for_the_sweeper(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given the broker is down when a registration starts
    broker.refusing = OperationalError("connection refused")

    # when the registration commits
    with django_capture_on_commit_callbacks(execute=True):
        process = register()

    # then its first command is left pending, due within a second
    step = Step.objects.get(process=process)
    assert step.status == StepStatus.PENDING
    assert step.next_attempt_at is not None and step.sent_at is not None
    assert 0 < (step.next_attempt_at - step.sent_at).total_seconds() <= 1.1
