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
