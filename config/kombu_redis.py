"""kombu's Redis transport, with unreadable messages dropped instead of stopping the worker, and
one client object per channel for its commands, and no round trip to acknowledge a message
consumed without acknowledgement.

BRPOP has already taken the message off the list when kombu decodes it, so a message that is not
JSON is logged and dropped (Redis has no dead-letter queue); one of the wrong shape is caught by
the envelope check (config/kombu_envelopes.py).

kombu builds a new redis-py client object for every command it sends outside the worker's event
loop (each publish, each queue length); building one fills its table of ~170 response callbacks,
about a third of what publishing a task costs us. The connections are pooled either way, and a
redis-py client is safe to share between threads (it takes a pooled connection per command), so
the channel keeps one, and makes a new one when its pool is replaced (after a fork).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from json import JSONDecodeError
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis

from config.kombu_envelopes import EnvelopeCheckingTransport, log_set_aside


class QoS(redis.QoS):
    """A message consumed without acknowledgement (a lookup, config/celery.py) was never written
    to the unacked index: acknowledging it (Celery acks every task) has nothing to clear there."""

    def ack(self, delivery_tag: Any) -> None:
        if delivery_tag not in (self._delivered or ()):
            return
        super().ack(delivery_tag)


class Channel(redis.Channel):
    QoS = QoS
    _command_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._command_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._command_client = self._create_client()  # type: ignore[attr-defined]
        yield shared

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))  # type: ignore[misc]
        except JSONDecodeError as error:
            log_set_aside("a Redis queue", f"not JSON ({error.msg})", error.doc)
            return True  # a message was consumed: the next BRPOP starts as usual


class Transport(EnvelopeCheckingTransport, redis.Transport):
    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` mean this transport (before any connection is made)."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
