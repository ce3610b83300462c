"""Orchestration when a component is down: retries, failure, manual retry, lookups that time
out. No worker runs here but those each test starts."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from crm.models import Client, Communication
from integration import actions, gateway
from integration.models import ProcessedMessage, Step
from integration.orchestrator import engine
from tests.flows.test_orchestration import register, sent
from tests.support import flows, processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

# What a worker logs as it takes a step's command off its queue (Celery's own INFO line).
RECEIVED_COPY = re.compile(r"Task integration\.run_step\[[0-9a-f-]+\] received")


@pytest.fixture(autouse=True)
def orchestration_mode() -> None:

    actions.mode_switch(mode="orchestration")


@pytest.mark.broker
def test_crm_down_means_retries_then_completion_once_it_is_back(
    fast_retries: dict[str, str], settings: Any
) -> None:
    settings.ORCHESTRATOR_MAX_ATTEMPTS = 8
    env = {**fast_retries, "ORCHESTRATOR_MAX_ATTEMPTS": "8"}
    others = flows.start_workers("sales,marketing,correspondence,integration", env)
    sweeper = processes.start_scheduler(env)
    try:
        # Given no worker consumes crm's queue
        process = register()
        # Then the orchestrator retries the command, and the trace says so
        flows.wait_for_trace(process.id, lambda e: e == sent("create_client", 2))
        # When crm's worker starts
        crm = flows.start_workers("crm", env)
        try:
            finished = flows.wait_for_status(process.id)
        finally:
            crm.stop()
    finally:
        others.stop()
        sweeper.stop()
    # Then the process completed, and the copies sent meanwhile took effect once
    trace = flows.trace_of(process.id)
    assert finished.status == "completed"
    assert ("integration", "create_client", "retry", "timed_out", 1) in trace
    assert len([e for e in trace if e[2] == "step" and e[1] == "create_client"]) == 1
    assert Client.objects.count() == 1
    assert Communication.objects.count() == 1
    assert ProcessedMessage.objects.filter(consumer="crm").count() == 2


@pytest.mark.broker
def test_retries_spent_fail_the_process_and_a_manual_retry_completes_it(
    fast_retries: dict[str, str], scheduler: Any
) -> None:
    others = flows.start_workers("sales,marketing,correspondence,integration", fast_retries)
    try:
        # Given crm never answers
        process = register()
        failed = flows.wait_for_status(process.id, {"failed"}, timeout=30)
        step = Step.objects.get(process=process, name="create_client")
        assert (failed.finished_at is not None, step.status, step.attempts) == (True, "failed", 3)
        trace = flows.trace_of(process.id)
        assert trace[-2:] == [
            ("integration", "create_client", "failure", "failed", 3),
            ("integration", "client_registration", "action", "failed", 1),
        ]
        assert [e for e in trace if e[2] == "retry"] == [
            ("integration", "create_client", "retry", "timed_out", 1),
            ("integration", "create_client", "retry", "timed_out", 2),
            ("integration", "create_client", "retry", "timed_out", 3),
        ]
        # When crm is back (one worker process: it takes its queue one message at a time)
        crm = flows.start_workers("crm", fast_retries, concurrency=1)
        try:
            # the stale copies reach crm: its worker received every copy sent...
            wait_until(
                lambda: len(RECEIVED_COPY.findall(crm.output())) >= step.attempts,
                timeout=15,
                describe=crm.output,
            )
            # ...and answers a ping queued behind them only once it is done with them
            flows.wait_for_workers(["crm"])
            # and they were ignored: the step had failed
            assert Client.objects.count() == 0
            engine.step_retry(step_id=step.id, by="operator")
            finished = flows.wait_for_status(process.id, timeout=30)
        finally:
            crm.stop()
    finally:
        others.stop()
    # Then the process completes, from that step on
    assert finished.finished_at is not None
    trace = flows.trace_of(process.id)
    resumed = trace.index(("integration", "client_registration", "action", "running", 1))
    assert trace[resumed + 1 : resumed + 3] == [
        sent("create_client", 1),
        ("crm", "create_client", "step", "done", 1),
    ]
    assert trace[-1] == ("integration", "client_registration", "action", "completed", 1)
    assert Client.objects.count() == 1


@pytest.mark.broker
def test_details_with_crm_down_name_it_unavailable_within_the_timeout(
    fast_retries: dict[str, str],
) -> None:
    sales = flows.start_workers("sales,marketing,correspondence,integration", fast_retries)
    try:
        process = register()
        started = time.monotonic()
        details = gateway.client_details(client_id=process.client_id)
        took = time.monotonic() - started
    finally:
        sales.stop()

    assert took < 0.5 + 0.5
    assert details["served_by"]["unavailable"] == ["crm"]
    assert details["email"] is None and details["first_name"] is None
    assert details["communications"] == [] and details["purchases"] == []
