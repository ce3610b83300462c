"""A message no task can read lands on a component's queue: the worker drops it and goes on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from kombu import Connection, Queue
from kombu.exceptions import ChannelError

from tests.chaos.conftest import Stack
from tests.chaos.effects import assert_sent_once, effects_of_registration, once, wait_completed
from tests.chaos.shop import person
from tests.support import faults
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def _push_raw(queue: str, body: bytes) -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=queue,
            declare=[Queue(queue)],
            content_type="application/json",
            content_encoding="utf-8",
            serializer=None,
            retry=True,
        )


def _waiting_on(queue: str) -> int:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as connection:
        channel: Any = connection.default_channel
        try:
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
        except ChannelError as error:
            if "NOT_FOUND" in str(error):  # Redis keeps no empty list: nothing is waiting
                return 0
            raise


@pytest.mark.parametrize("mode", ["orchestration"], indirect=True)
def test_a_non_json_message_on_the_crm_queue_is_dropped_and_the_worker_goes_on(
    mode: str, launch: Callable[..., Stack], chaos_env: dict[str, str], smtp: faults.SmtpServer
) -> None:
    stack = launch(chaos_env)
    assert stack.worker is not None
    commands = faults.command_worker(stack.worker.popen.pid)

    # When a body that is not JSON is pushed on crm's queue
    _push_raw("crm", b"\x00{ this is not json")

    # Then the worker takes it off the queue
    wait_until(lambda: _waiting_on("crm") == 0, timeout=30, describe=stack.logs)
    # and still carries out crm's commands: a registration completes, every effect once
    ada = person("after-poison")
    started = stack.shop.register(ada)
    assert started.status == 202, started.body
    wait_completed([started.body["process_id"]])
    assert effects_of_registration(started.body["client_id"], ada["email"], mode) == once(mode)
    assert_sent_once(smtp, ada["email"])
    # with the same worker process: it survived the message
    assert faults.command_worker(stack.worker.popen.pid) == commands
    assert stack.worker.alive()
