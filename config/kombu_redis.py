"""kombu's Redis transport, with unreadable messages dropped instead of stopping the worker.

BRPOP has already taken the message off the list when kombu decodes it, so a message that is not
JSON is logged and dropped (Redis has no dead-letter queue); one of the wrong shape is caught by
the envelope check (config/kombu_envelopes.py).
"""

from __future__ import annotations

from json import JSONDecodeError
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis

from config.kombu_envelopes import EnvelopeCheckingTransport, log_set_aside


class Channel(redis.Channel):
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
