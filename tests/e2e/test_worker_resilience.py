"""`make worker` survives what would stop a bare Celery worker: messages it cannot read, its own
worker processes dying, and a step that kills every process that runs it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from kombu import Queue

from config.celery import app as celery_app
from integration import gateway
from integration.core import modes
from integration.models import Step, TraceEntry
from tests.support import faults, flows, processes
from tests.support.waiting import wait_until
from tests.support.worker_crash import KILLS_ITS_WORKER, SETTINGS_MODULE

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SET_ASIDE = "set aside an unreadable message on "
CRASH_LIMIT = 2


@pytest.fixture(autouse=True)
def orchestration_mode() -> None:
    modes.mode_set(mode="orchestration")


@pytest.fixture
def worker(child_env: dict[str, str]) -> Iterator[processes.Process]:
    process = flows.start_workers(flows.ALL, child_env)
    yield process
    process.stop()


def register(email: str, first_name: str = "Ada") -> Any:
    return gateway.client_register(
        email=email, first_name=first_name, last_name="Lovelace", initiator=gateway.SYSTEM
    )


def publish_raw(body: bytes | str, headers: dict[str, Any] | None = None) -> None:
    """A message on crm's queue as any kombu client could put it there, task or not."""
    with celery_app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key="crm",
            declare=[Queue("crm")],
            headers=headers or {},
            content_type="application/json",
            content_encoding="utf-8",
            serializer=None,
            retry=True,
        )


def push_unreadable_envelope() -> int:
    """Bytes that are not a kombu envelope at all, where the transport lets us put them (a Redis
    list); how many were pushed."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return 0
    with celery_app.connection_for_write() as connection:
        client = connection.default_channel.client  # type: ignore[attr-defined]
        client.lpush("crm", b"\x00{ not json")
        client.lpush("crm", b'{"not": "an envelope"}')
    return 2


@pytest.mark.broker
def test_bad_messages_are_set_aside_and_the_worker_goes_on(worker: processes.Process) -> None:
    commands = faults.command_worker(worker.popen.pid)

    # When a body that is not JSON and task envelopes of the wrong shape reach crm's queue
    publish_raw(b"\x00{ this is not json")
    publish_raw('{"not": "a task"}', headers={"task": "integration.run_step"})
    publish_raw('"not [args, kwargs, embed]"', headers={"task": "integration.run_step", "id": "x"})
    publish_raw("[[], {}, {}]", headers={"task": "integration.run_step", "id": "y", "timelimit": 5})
    expected = 4 + push_unreadable_envelope()

    # Then the worker logs each one as set aside
    wait_until(
        lambda: worker.output().count(SET_ASIDE) == expected,
        timeout=30,
        describe=lambda: worker.output()[-3000:],
    )
    # and still carries out crm's commands, in the same worker process
    process = register("after-bad-messages@example.com")
    assert flows.wait_for_status(process.id).status == "completed"
    assert faults.command_worker(worker.popen.pid) == commands
    assert worker.alive()
    assert worker.output().count(SET_ASIDE) == expected


@pytest.mark.broker
def test_a_killed_worker_process_is_started_again(worker: processes.Process) -> None:
    commands = faults.command_worker(worker.popen.pid)

    # When the Celery worker of crm's commands is killed
    os.kill(commands, signal.SIGKILL)

    # Then run_worker starts another one
    restarted = wait_until(
        lambda: _new_command_worker(worker.popen.pid, commands),
        timeout=30,
        describe=lambda: worker.output()[-3000:],
    )
    assert f"the commands worker (pid {commands}) exited with -9" in worker.output()
    # and work completes
    flows.wait_for_workers(["crm"])
    process = register("after-restart@example.com")
    assert flows.wait_for_status(process.id).status == "completed"
    assert faults.command_worker(worker.popen.pid) == restarted
    assert worker.alive()


def _new_command_worker(supervisor: int, old: int) -> int | None:
    try:
        pid = faults.command_worker(supervisor)
    except LookupError:
        return None
    return pid if pid != old else None


@pytest.mark.broker
def test_a_step_that_kills_its_worker_is_dead_after_the_crash_limit(
    child_env: dict[str, str],
) -> None:
    # Given workers whose create_client step kills its own process for this client
    env = {
        **child_env,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "WORKER_CRASH_LIMIT": str(CRASH_LIMIT),
    }
    worker = flows.start_workers(flows.ALL, env)
    try:
        # When such a client registers
        process = register("kills-its-worker@example.com", first_name=KILLS_ITS_WORKER)

        # Then after CRASH_LIMIT lost runs the step is not run again: the process fails
        failed = flows.wait_for_status(process.id, {"failed"}, timeout=60)
        step = Step.objects.get(process=process, name="create_client")
        assert (step.status, step.runs) == ("failed", CRASH_LIMIT)
        assert flows.trace_of(process.id)[-2:] == [
            ("crm", "create_client", "failure", "dead", 1),
            ("integration", "client_registration", "action", "failed", 1),
        ]
        dead = TraceEntry.objects.get(process=failed, kind="failure", status="dead")
        assert dead.detail == {"error": "worker lost", "runs": CRASH_LIMIT}
        # and the worker goes on with other work
        other = register("unharmed@example.com")
        assert flows.wait_for_status(other.id).status == "completed"
        assert worker.alive()
    finally:
        worker.stop()
