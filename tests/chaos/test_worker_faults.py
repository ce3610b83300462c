"""A worker loses a process, or is stopped, while it carries out a step: the welcome email is
slow to send (the SMTP server greets after a while), and the fault lands while it is being sent."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from crm.models import Client
from tests.chaos.conftest import MODES, Stack
from tests.chaos.effects import (
    assert_sent_once,
    assert_sent_once_but_for_the_window,
    effects_of_registration,
    once,
    wait_completed,
    wait_finished,
)
from tests.chaos.shop import person
from tests.support import faults, flows, worker_crash
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

SLOW_GREETING = 1.5  # seconds: a send that takes this long, within EMAIL_TIMEOUT


def _registration_sending_its_email(
    launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer, tag: str
) -> tuple[Stack, dict[str, Any], Any, faults.SmtpConnection]:
    stack = launch(chaos_env)
    smtp.slow_greeting(SLOW_GREETING)
    ada = person(tag)
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    return stack, ada, started, smtp.wait_for_connection(1)


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_a_pool_child_killed_mid_step_is_replaced_and_the_process_completes_once(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    # Given a registration whose welcome email is being sent by a pool child of the worker
    stack, ada, started, sending = _registration_sending_its_email(
        launch, chaos_env, smtp, "pool-child"
    )
    assert stack.worker is not None
    commands = faults.command_worker(stack.worker.popen.pid)
    sender = faults.pid_with_connection_from(sending.peer_port, faults.children_of(commands))

    # When that pool child is killed and the SMTP server is quick again
    os.kill(sender, signal.SIGKILL)
    smtp.normal()

    # Then the worker lives on with a new pool child, and the process completes
    wait_until(
        lambda: sender not in faults.children_of(commands) and faults.children_of(commands),
        timeout=30,
        describe=stack.logs,
    )
    wait_completed([started.body["process_id"]])
    assert faults.alive(commands)
    # with every effect once, and the email at most once (the child died before DATA)
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["choreography"], indirect=True)
def test_the_worker_main_process_killed_mid_step_is_restarted_and_the_process_completes_once(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    # Given a registration whose welcome email is being sent by the worker
    stack, ada, started, _ = _registration_sending_its_email(launch, chaos_env, smtp, "main")
    assert stack.worker is not None
    supervisor = stack.worker.popen.pid
    commands = faults.command_worker(supervisor)

    # When the worker's main process (the Celery parent of the pool) is killed
    os.kill(commands, signal.SIGKILL)
    smtp.normal()

    # Then `make worker` starts a new one in its place
    def restarted() -> int | None:
        try:
            replacement = faults.command_worker(supervisor)
        except LookupError:
            return None
        return replacement if replacement != commands else None

    wait_until(restarted, timeout=60, describe=stack.logs)
    assert stack.worker.alive()
    # and the process completes, every effect once; the orphaned pool child may have finished
    # the send before the record of it was acknowledged: the same email at most twice
    wait_completed([started.body["process_id"]])
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once_but_for_the_window(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_sigterm_mid_step_finishes_the_step_stops_cleanly_and_a_new_worker_completes_the_process(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    # Given a registration whose welcome email is being sent by the worker
    stack, ada, started, sending = _registration_sending_its_email(
        launch, chaos_env, smtp, "sigterm"
    )
    assert stack.worker is not None

    # When the operator stops the worker (SIGTERM, as Ctrl-C or systemd would)
    os.kill(stack.worker.popen.pid, signal.SIGTERM)

    # Then the send in progress finishes, and the worker exits cleanly within its grace
    assert stack.worker.popen.wait(timeout=40) == 0, stack.worker.output()[-3000:]
    assert sending.closed.wait(timeout=5)
    assert_sent_once(smtp, ada["email"])

    # When a new worker starts, the process completes, with every effect once
    smtp.normal()
    stack.start_worker()
    wait_completed([started.body["process_id"]])
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


CRASH_LIMIT = 2


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_a_step_that_kills_its_worker_every_time_is_dead_after_the_limit_and_the_worker_goes_on(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    # Given workers whose create_client step kills its own pool process for one first name
    # (the test hook), and that give up after WORKER_CRASH_LIMIT runs lost their process
    stack = launch(
        {
            **chaos_env,
            "DJANGO_SETTINGS_MODULE": worker_crash.SETTINGS_MODULE,
            "WORKER_CRASH_LIMIT": str(CRASH_LIMIT),
        }
    )
    assert stack.worker is not None
    commands = faults.command_worker(stack.worker.popen.pid)
    doomed = {**person("kills-its-worker"), "first_name": worker_crash.KILLS_ITS_WORKER}

    # When that client registers
    started = stack.shop.register(doomed)
    assert started.status == 202, started.body

    # Then the step is not run again after the limit: the process failed, the reason in its trace
    finished = wait_finished(started.body["process_id"])
    trace = flows.trace_of(finished.id)
    assert finished.status == "failed", trace
    dead = [e[:4] for e in trace if e[2] == "failure" and e[3] == "dead"]
    assert dead == [("crm", "create_client", "failure", "dead")], trace
    assert Client.objects.filter(email=doomed["email"]).count() == 0
    # and the worker lives on (its pool child was replaced) and carries out the next process
    assert faults.alive(commands) and stack.worker.alive()
    ada = person("after-crashes")
    next_one = stack.shop.register(ada)
    assert next_one.status == 202, next_one.body
    wait_completed([next_one.body["process_id"]])
    assert effects_of_registration(next_one.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])


@pytest.mark.parametrize("mode", ["choreography"], indirect=True)
def test_a_message_whose_runs_keep_killing_their_worker_becomes_dead_and_the_worker_goes_on(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    # Given a worker that gives up on a message after WORKER_CRASH_LIMIT runs lost their process
    stack = launch({**chaos_env, "WORKER_CRASH_LIMIT": str(CRASH_LIMIT)})
    assert stack.worker is not None
    commands = faults.command_worker(stack.worker.popen.pid)
    smtp.slow_greeting(SLOW_GREETING)
    ada = person("crashes")

    # When every run of the welcome email ends with its pool child killed (as by a segfault)
    killed: list[int] = []
    stop = threading.Event()

    def kill_every_sender() -> None:
        seen = 0
        while not stop.is_set():
            if len(smtp.connections) > seen:
                sending = smtp.connections[seen]
                seen += 1
                with contextlib.suppress(LookupError, ProcessLookupError):
                    pool = faults.children_of(commands)
                    sender = faults.pid_with_connection_from(sending.peer_port, pool)
                    os.kill(sender, signal.SIGKILL)
                    killed.append(sender)
            stop.wait(0.01)  # paces the watcher; ends at once when the test stops it

    killer = threading.Thread(target=kill_every_sender, daemon=True)
    killer.start()
    try:
        started = stack.shop.register(ada)
        assert started.status == 202, started.body
        finished = wait_finished(started.body["process_id"])
    finally:
        stop.set()
        killer.join(timeout=5)

    # Then the message is not run again: the process failed, the reason in its trace
    trace = flows.trace_of(finished.id)
    assert finished.status == "failed", trace
    dead = [(e[0], e[2], e[3]) for e in trace if e[2] == "failure" and e[3] == "dead"]
    assert dead == [("correspondence", "failure", "dead")], trace
    assert len(killed) >= CRASH_LIMIT
    assert smtp.copies_to(ada["email"]) == []
    # and the worker itself lives on with a fresh pool
    assert faults.alive(commands) and faults.children_of(commands) != []
    assert stack.worker.alive()
