"""The sweepers ask the real broker how many messages wait in a queue (core/backlog.py)."""

from __future__ import annotations

import uuid

import pytest
from kombu import Queue

from config.celery import app
from integration.core import relay
from tests.support.waiting import wait_until


@pytest.mark.broker
def test_the_relay_counts_the_messages_waiting_in_a_queue_and_an_unknown_queue_holds_none() -> None:
    name = f"test-count-{uuid.uuid4().hex[:8]}"
    queue = Queue(name)
    with app.connection_for_write() as connection:
        producer = connection.Producer()
        for number in range(3):
            producer.publish({"n": number}, routing_key=name, declare=[queue], retry=True)
        try:
            # RabbitMQ takes a publish without confirming it: the count may lag it for a moment
            wait_until(
                lambda: relay.queued_messages(name) == 3,
                timeout=5,
                describe=lambda: f"counted {relay.queued_messages(name)}",
            )
        finally:
            queue(connection.default_channel).delete()
    assert relay.queued_messages(f"test-never-declared-{uuid.uuid4().hex[:8]}") == 0
