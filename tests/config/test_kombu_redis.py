"""The Redis transport sends its commands through one client per channel (config/kombu_redis.py)."""

from __future__ import annotations

from typing import Any

import pytest

from config import kombu_redis
from config.celery import app

pytestmark = pytest.mark.redis


def test_a_channel_keeps_one_client_for_its_commands_and_a_new_one_for_a_new_pool() -> None:
    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel, kombu_redis.Channel)
        channel: Any = connection.default_channel

        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        channel._disconnect_pools()  # what a fork does: the next command gets a new pool
        with channel.conn_or_acquire() as third:
            assert third is not first
            assert third.connection_pool is channel.pool
            assert third.ping() is True


def test_messages_still_go_through_the_shared_client() -> None:
    queue = "test-kombu-redis-shared-client"
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.client.delete(queue)
        for number in range(3):
            channel._put(queue, {"body": str(number)})

        assert channel._size(queue) == 3
        assert [channel._get(queue)["body"] for _ in range(3)] == ["0", "1", "2"]


def _queue(name: str) -> Any:
    return next(queue for queue in app.conf.task_queues if queue.name == name)


def test_lookups_are_consumed_without_acknowledgement_and_commands_with_it() -> None:
    lookups, commands = _queue("crm.lookup"), _queue("crm")
    assert (lookups.no_ack, commands.no_ack) == (True, False)
    received: list[Any] = []
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.client.delete(lookups.name, commands.name, channel.unacked_key)
        with connection.Producer() as producer:
            for queue in (lookups, commands):
                producer.publish({"to": queue.name}, routing_key=queue.name, declare=[queue])
        with connection.Consumer([lookups, commands], callbacks=[lambda b, m: received.append(m)]):
            while len(received) < 2:
                connection.drain_events(timeout=2)
            unacked = channel.client.hkeys(channel.unacked_key)
            by_queue = {message.payload["to"]: message for message in received}
            # the command is kept in the unacked index until acknowledged; the lookup never is
            assert [tag.decode() for tag in unacked] == [by_queue["crm"].delivery_tag]
            cleared: list[Any] = []
            remove = channel.qos._remove_from_indices

            def counted(tag: Any, *rest: Any) -> Any:
                cleared.append(tag)
                return remove(tag, *rest)

            channel.qos._remove_from_indices = counted
            by_queue["crm.lookup"].ack()
            assert cleared == []  # nothing sent to Redis for it
            by_queue["crm"].ack()
            assert cleared == [by_queue["crm"].delivery_tag]
            assert channel.client.hlen(channel.unacked_key) == 0
