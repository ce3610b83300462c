"""A process's life: finishing, resuming, waking, being marked stuck, being closed by a person."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from common.errors import ApplicationError
from integration.core import lifecycle, signals
from integration.models import Process, ProcessKind, ProcessStatus, Step, StepStatus
from tests.integration.helpers import details_of, trace_of

pytestmark = pytest.mark.django_db


def a_process(status: str = ProcessStatus.RUNNING, kind: str = ProcessKind.PURCHASE) -> Process:
    finished_at = timezone.now() if status in ("completed", "failed", "closed") else None
    return Process.objects.create(
        kind=kind,
        mode="orchestration",
        client_id=uuid.uuid4(),
        status=status,
        finished_at=finished_at,
    )


@pytest.fixture
def announced() -> Iterator[list[tuple[Any, str]]]:
    """What the core's process_status_changed signal tells its receivers (webhooks)."""
    heard: list[tuple[Any, str]] = []

    def hear(sender: Any, process: Process, status: str, **kwargs: Any) -> None:
        heard.append((process.id, status))

    signals.process_status_changed.connect(hear, dispatch_uid="test.announced")
    try:
        yield heard
    finally:
        signals.process_status_changed.disconnect(dispatch_uid="test.announced")


def test_finish_moves_traces_and_announces_once(announced: list[tuple[Any, str]]) -> None:
    # given a running process
    process = a_process()

    # when it completes, and is told to complete again
    lifecycle.process_finish(process=process, status="completed", detail={"n": 1})
    lifecycle.process_finish(process=process, status="completed")

    # then one entry and one announcement say so
    process.refresh_from_db()
    assert process.status == "completed" and process.finished_at is not None
    assert trace_of(process.id) == [("integration", "purchase", "action", "completed", 1)]
    assert details_of(process.id) == [{"n": 1}]
    assert announced == [(process.id, "completed")]


def test_resume_runs_a_failed_process_again_and_says_who(announced: list[tuple[Any, str]]) -> None:
    process = a_process("failed")

    lifecycle.process_resume(process=process, by="user:ops", detail={"step": "send_receipt"})

    process.refresh_from_db()
    assert (process.status, process.finished_at) == ("running", None)
    assert trace_of(process.id) == [("integration", "purchase", "action", "running", 1)]
    assert details_of(process.id) == [{"step": "send_receipt", "by": "user:ops"}]
    assert announced == []


@pytest.mark.parametrize("status", ["running", "failed", "completed", "closed"])
def test_wake_moves_only_a_stuck_process(status: str) -> None:
    process = a_process(status)

    lifecycle.process_wake(process=process)

    process.refresh_from_db()
    assert process.status == status
    assert trace_of(process.id) == []


def test_wake_moves_a_stuck_process_back_to_running() -> None:
    process = a_process("stuck")

    lifecycle.process_wake(process=process)

    process.refresh_from_db()
    assert process.status == "running"
    assert trace_of(process.id) == [("integration", "purchase", "action", "running", 1)]
    assert details_of(process.id) == [{"reason": "activity", "by": "integration"}]


def test_mark_stuck_traces_a_failure_and_announces(announced: list[tuple[Any, str]]) -> None:
    process = a_process()

    assert lifecycle.process_mark_stuck(process=process, idle_seconds=301.26) is True
    assert lifecycle.process_mark_stuck(process=process, idle_seconds=400) is False

    process.refresh_from_db()
    assert (process.status, process.finished_at) == ("stuck", None)
    assert trace_of(process.id) == [("integration", "purchase", "failure", "stuck", 1)]
    assert details_of(process.id) == [{"idle_seconds": 301.3}]
    assert announced == [(process.id, "stuck")]


def test_close_skips_open_steps_and_records_the_reason(announced: list[tuple[Any, str]]) -> None:
    # given a stuck process with one step done and one waiting for an answer
    process = a_process("stuck")
    done = Step.objects.create(
        process=process, position=1, name="record_purchase", component="sales", status="done"
    )
    waiting = Step.objects.create(
        process=process,
        position=2,
        name="add_client_value",
        component="crm",
        status="sent",
        next_attempt_at=timezone.now(),
    )

    # when a person closes it
    closed = lifecycle.process_close(process_id=process.id, reason="  shop cancelled  ", by="ops")

    # then nothing is left to send, and the trace says who closed it and why
    process.refresh_from_db()
    assert closed.id == process.id
    assert process.status == "closed" and process.finished_at is not None
    assert list(
        Step.objects.filter(pk__in=[done.id, waiting.id])
        .order_by("position")
        .values_list("status", "next_attempt_at")
    ) == [(StepStatus.DONE, None), (StepStatus.SKIPPED, None)]
    assert trace_of(process.id) == [("integration", "purchase", "action", "closed", 1)]
    assert details_of(process.id) == [{"reason": "shop cancelled", "by": "ops"}]
    assert announced == [(process.id, "closed")]


def test_a_failed_process_can_be_closed() -> None:
    process = a_process("failed")

    lifecycle.process_close(process_id=process.id, reason="gave up", by="ops")

    process.refresh_from_db()
    assert process.status == "closed"


@pytest.mark.parametrize("status", ["completed", "closed"])
def test_a_final_process_cannot_be_closed(status: str) -> None:
    process = a_process(status)

    with pytest.raises(ApplicationError) as raised:
        lifecycle.process_close(process_id=process.id, reason="again", by="ops")

    assert raised.value.detail == f"a {status} process cannot be closed"
    process.refresh_from_db()
    assert process.status == status
    assert trace_of(process.id) == []


def test_close_needs_a_reason() -> None:
    process = a_process()

    with pytest.raises(ApplicationError) as raised:
        lifecycle.process_close(process_id=process.id, reason="   ", by="ops")

    assert (raised.value.detail, raised.value.errors) == (
        "a reason is required",
        {"reason": ["Give a reason."]},
    )
    process.refresh_from_db()
    assert process.status == "running"
