"""A step or delivery whose runs keep killing their worker process: counted before each run, and
dead once WORKER_CRASH_LIMIT runs never came back, instead of being redelivered for ever."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import F

from crm import services as crm_services
from crm.models import Client
from integration import actions, bus
from integration.models import Delivery, DeliveryStatus, Process, Step, StepStatus
from integration.orchestrator import engine
from tests.integration.helpers import details_of, register, trace_of

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
LIMIT = 3


@pytest.fixture(autouse=True)
def crash_limit(settings: Any) -> None:
    settings.WORKER_CRASH_LIMIT = LIMIT


def create_client_step(process: Process) -> Step:
    return Step.objects.get(process=process, name="create_client")


def crashed_runs(rows: Any, runs: int) -> None:
    """As if `runs` copies had begun and each had taken its worker process down."""
    rows.update(runs=F("runs") + runs)


# --- steps ------------------------------------------------------------------------------------


def test_a_step_counts_its_run_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a step whose run we watch
    process = register()
    step = create_client_step(process)
    seen: list[int] = []
    create = crm_services.client_create

    def watched(**kwargs: Any) -> Any:
        seen.append(Step.objects.values_list("runs", flat=True).get(pk=step.id))
        return create(**kwargs)

    monkeypatch.setattr(crm_services, "client_create", watched)

    # when it runs
    assert engine.step_execute(step_id=step.id) == "done"

    # then the run was on record while it ran
    assert seen == [1]


def test_a_step_whose_runs_killed_their_workers_is_not_run_again_and_fails_its_process() -> None:
    # given a step whose last three runs never ended
    process = register()
    step = create_client_step(process)
    crashed_runs(Step.objects.filter(pk=step.id), LIMIT)

    # when another copy of its command arrives
    outcome = engine.step_execute(step_id=step.id)

    # then it is not run: the step failed, the trace says why, and the process failed
    assert outcome == "dead: worker lost"
    assert Client.objects.count() == 0
    step.refresh_from_db()
    assert (step.status, step.runs, step.next_attempt_at, step.last_error) == (
        StepStatus.FAILED,
        LIMIT,
        None,
        "worker lost: 3 runs ended with their worker process",
    )
    assert trace_of(process.id)[-2:] == [
        ("crm", "create_client", "failure", "dead", 1),
        ("integration", "client_registration", "action", "failed", 1),
    ]
    assert details_of(process.id)[-2] == {"error": "worker lost", "runs": LIMIT}
    process.refresh_from_db()
    assert process.status == "failed"
    # and a later copy changes nothing
    assert engine.step_execute(step_id=step.id) == "ignored: step is failed"


def test_a_run_below_the_limit_still_runs() -> None:
    process = register()
    step = create_client_step(process)
    crashed_runs(Step.objects.filter(pk=step.id), LIMIT - 1)

    assert engine.step_execute(step_id=step.id) == "done"
    assert Step.objects.values_list("status", "runs").get(pk=step.id) == (StepStatus.DONE, LIMIT)


def test_a_run_that_raises_ends_and_does_not_count_as_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a step with two lost runs, and crm raising
    process = register()
    step = create_client_step(process)
    crashed_runs(Step.objects.filter(pk=step.id), LIMIT - 1)

    def refuse(**kwargs: Any) -> Any:
        raise RuntimeError("crm is down")

    monkeypatch.setattr(crm_services, "client_create", refuse)

    # when a run raises
    assert engine.step_execute(step_id=step.id) == "error: RuntimeError"

    # then its outcome is recorded and the count starts again
    assert Step.objects.values_list("status", "runs").get(pk=step.id) == (StepStatus.WAITING, 0)


def test_a_person_retries_a_dead_step_with_fresh_runs(
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # given a step dead after lost runs
    process = register()
    step = create_client_step(process)
    crashed_runs(Step.objects.filter(pk=step.id), LIMIT)
    engine.step_execute(step_id=step.id)

    # when a person retries it
    with django_capture_on_commit_callbacks(execute=True):
        engine.step_retry(step_id=step.id, by="operator")

    # then it runs again, and completes
    assert Step.objects.values_list("status", "runs").get(pk=step.id) == (StepStatus.SENT, 0)
    assert engine.step_execute(step_id=step.id) == "done"
    assert Client.objects.count() == 1


# --- deliveries -------------------------------------------------------------------------------


@pytest.fixture
def choreography() -> None:
    actions.mode_switch(mode="choreography", changed_by="test")


@pytest.mark.usefixtures("choreography")
def test_a_delivery_whose_runs_killed_their_workers_is_dead_and_fails_its_process() -> None:
    # given crm's delivery of ClientRegistered, whose last three runs never ended
    process = register()
    delivery = Delivery.objects.get(process=process)
    crashed_runs(Delivery.objects.filter(pk=delivery.id), LIMIT)

    # when another copy arrives
    outcome = bus.deliver(delivery_id=delivery.id)

    # then it is not run: dead, traced, and the process failed
    assert outcome == "dead: worker lost"
    assert Client.objects.count() == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.runs, delivery.last_error) == (
        DeliveryStatus.DEAD,
        LIMIT,
        "worker lost: 3 runs ended with their worker process",
    )
    assert trace_of(process.id)[-2:] == [
        ("crm", "ClientRegistered", "failure", "dead", 1),
        ("integration", "client_registration", "action", "failed", 1),
    ]
    assert details_of(process.id)[-2:] == [
        {"error": "worker lost", "runs": LIMIT},
        {"dead": delivery.listener},
    ]
    process.refresh_from_db()
    assert process.status == "failed"


@pytest.mark.usefixtures("choreography")
def test_a_person_retries_a_dead_delivery_with_fresh_runs(
    django_capture_on_commit_callbacks: Capture,
) -> None:
    process = register()
    delivery = Delivery.objects.get(process=process)
    crashed_runs(Delivery.objects.filter(pk=delivery.id), LIMIT)
    bus.deliver(delivery_id=delivery.id)

    with django_capture_on_commit_callbacks(execute=True):
        bus.delivery_retry(delivery_id=delivery.id, by="operator")

    assert Delivery.objects.values_list("status", "runs").get(pk=delivery.id) == ("sent", 0)
    assert bus.deliver(delivery_id=delivery.id) == "done"
    assert Client.objects.count() == 1


def test_a_copy_that_ends_without_running_the_step_takes_its_count_back() -> None:
    # given a step with one run that died with its worker, and its component paused
    process = register()
    step = Step.objects.get(process=process)
    Step.objects.filter(pk=step.pk).update(runs=1)
    actions.component_set(name="crm", state="paused", by="test")

    # when another copy arrives and is held instead of run
    assert engine.step_execute(step_id=step.id) == "held: crm paused"

    # then only the run that died is counted
    assert Step.objects.get(pk=step.pk).runs == 1


def test_a_delivery_copy_that_ends_without_running_takes_its_count_back(
    choreography: None,
) -> None:
    register()
    delivery = Delivery.objects.get(listener="crm.create_client")
    Delivery.objects.filter(pk=delivery.pk).update(runs=1)
    actions.component_set(name="crm", state="paused", by="test")

    assert bus.deliver(delivery_id=delivery.id) == "held: crm paused"

    assert Delivery.objects.get(pk=delivery.pk).runs == 1
