"""The outbox relay: puts messages whose rows are committed onto the broker.

Rows are written in the transaction of the change that caused them; this module publishes them
after commit, once, with a short connect timeout and no retry, so that a broker that is down never
delays an HTTP answer. When publishing fails the row is marked for the sweeper, which sends it as
soon as the broker is back. After one failure the relay stops trying for a few seconds (a circuit
breaker), so a burst of requests does not pay one connect timeout each.

Everything the broker can make us wait for happens inside the one `send_task` call the breaker
watches: connecting (one attempt: the transport's `max_retries` is 0), the socket timeouts of a
broker that accepts and never answers, and the publish itself. Nothing here asks for a result,
so the result backend is never touched on this path (Celery's Redis backend would otherwise
subscribe to the task's result, reconnecting for many seconds when Redis is down).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from common import correlation
from config.celery import app

logger = logging.getLogger(__name__)

BREAKER_SECONDS = 3.0
_broker_down_until = 0.0


@dataclass(frozen=True)
class Outgoing:
    task: str
    args: list[Any]
    queue: str
    correlation_id: str | None = None
    expires: float | None = None
    on_failure: Callable[[], None] | None = field(default=None, compare=False)


def broker_suspected_down() -> bool:
    return time.monotonic() < _broker_down_until


def trip_breaker() -> None:
    global _broker_down_until
    _broker_down_until = time.monotonic() + BREAKER_SECONDS


def send_now(message: Outgoing) -> bool:
    """Publish one message; False (and the row left to the sweeper) when the broker refused."""
    if broker_suspected_down():
        return False
    headers = {"correlation_id": message.correlation_id or correlation.get()}
    try:
        publish(
            message.task,
            message.args,
            queue=message.queue,
            headers=headers,
            expires=message.expires,
            ignore_result=True,
        )
    except Exception as error:  # noqa: BLE001 - any broker failure leaves the row to the sweeper
        logger.warning("broker refused %s for %s: %s", message.task, message.queue, error)
        trip_breaker()
        return False
    return True


def publish(task: str, args: list[Any], *, queue: str, **options: Any) -> Any:
    """Celery's `send_task`, once (no retry: the callers decide what a refusal means). The args'
    log representation is given: Celery's safe repr of them cost more than the publish itself."""
    return app.send_task(
        task, args=args, queue=queue, retry=False, argsrepr=repr(args), kwargsrepr="{}", **options
    )


def queued_messages(queue: str) -> int | None:
    """How many messages wait in a broker queue (not counting those a worker has taken); None
    when the broker cannot say. Bounded by the broker's connect and socket timeouts."""
    if broker_suspected_down():
        return None
    try:
        with app.connection_for_read() as connection:
            channel: Any = connection.channel()
            try:
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            finally:
                channel.close()
    except Exception as error:  # noqa: BLE001 - an unknown length is reported as unknown
        if "NOT_FOUND" in str(error):  # Redis keeps no empty list: nothing waits
            return 0
        logger.warning("could not count the messages on %s: %s", queue, error)
        return None


def send_after_commit(message: Outgoing) -> None:
    """Publish when (and only if) the surrounding transaction commits."""

    def publish() -> None:
        if not send_now(message) and message.on_failure is not None:
            try:
                message.on_failure()
            except Exception:  # the sweeper finds the row by its deadline anyway
                logger.exception("could not mark %s for the sweeper", message.task)

    transaction.on_commit(publish)
