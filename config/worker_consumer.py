"""The worker's consumer: a message it cannot run is logged and set aside, and the worker goes on.

Celery rejects some unreadable messages itself, but a task envelope of the wrong shape (a header
missing, a body that is not a list) can raise from its task strategy and stop the worker, and a
body it cannot decode is acknowledged, i.e. thrown away even where the broker could keep it.
Here both are rejected without requeue: RabbitMQ then dead-letters them when a dead-letter policy
covers the queue (README, "Bad messages"); Redis and the files drop them after the log line.
Messages the transport itself cannot decode never get here (config/kombu_envelopes.py).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from celery.worker.consumer import Consumer
from vine import promise

logger = logging.getLogger("ensemble.bad_messages")

LOGGED_BODY_CHARS = 200


class SetAsideConsumer(Consumer):
    connection_errors: tuple[type[BaseException], ...]
    channel_errors: tuple[type[BaseException], ...]

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"undecodable body ({exc})")

    # Celery rejects these two itself; here they are logged like every other message set aside.
    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._set_aside(message, "not a task message")
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._set_aside(message, f"invalid task ({exc})")
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def create_task_handler(self, promise: Any = promise) -> Any:
        on_task_received = super().create_task_handler(promise)
        # The consumer reconnects on these; kombu's Redis transport counts KeyError among them,
        # which here would only be a missing header, so that one is the message's fault.
        broker_errors = tuple(self.connection_errors) + tuple(self.channel_errors)
        fatal = tuple(kind for kind in broker_errors if not issubclass(kind, LookupError))

        def on_task_received_or_set_aside(message: Any) -> Any:
            problem = _header_problem(message.headers)
            if problem is not None:
                self._set_aside(message, problem)
                return None
            try:
                return on_task_received(message)
            except fatal:
                raise
            except Exception as error:  # noqa: BLE001 - one bad message never stops the worker
                self._set_aside(message, f"{type(error).__name__}: {error}")
                return None

        return on_task_received_or_set_aside

    def _set_aside(self, message: Any, problem: str) -> None:
        logger.error(
            "set aside an unreadable message on %s: %s: headers=%.*s body=%.*s",
            (message.delivery_info or {}).get("routing_key", "?"),
            problem,
            LOGGED_BODY_CHARS,
            repr(message.headers),
            LOGGED_BODY_CHARS,
            repr(message.body),
        )
        if not message.acknowledged:
            message.reject_log_error(logger, self.connection_errors, requeue=False)


def _header_problem(headers: Any) -> str | None:
    """What Celery would only trip over once the task holds a pool slot (which it then never
    gives back): everything else it checks while reading the message, before reserving one."""
    if not isinstance(headers, dict):
        return None  # Celery rejects a message without headers itself
    time_limits = headers.get("timelimit")
    if time_limits is None:
        return None
    if not isinstance(time_limits, list | tuple) or len(time_limits) != 2:
        return f"timelimit is {time_limits!r}, not [hard, soft]"
    if not all(limit is None or isinstance(limit, int | float) for limit in time_limits):
        return f"timelimit is {time_limits!r}, not numbers"
    return None
