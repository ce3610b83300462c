"""Broker messages a worker cannot read are set aside, never fatal.

kombu's virtual transports (Redis, files) decode each raw message into an envelope (`body`,
`properties`, `headers`) before Celery sees it. A message that is not JSON, or an envelope of the
wrong shape, raises there, outside every Celery hook, and stops the worker ("Unrecoverable
error"). The transports of config/kombu_redis.py and config/kombu_filesystem.py check the envelope
first: a bad one is logged and dropped. The database still knows every piece of work (the sweeper
sends it again), so nothing is lost by dropping what nobody can read. What is well formed for the
transport but not a task Celery can run is handled by the worker's consumer
(config/worker_consumer.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

logger = logging.getLogger("ensemble.bad_messages")

LOGGED_BODY_CHARS = 200


def envelope_problem(raw: Any) -> str | None:
    """What makes a raw transport envelope unreadable, or None when kombu can read it."""
    if not isinstance(raw, dict):
        return f"the envelope is a {type(raw).__name__}, not an object"
    properties = raw.get("properties")
    if not isinstance(properties, dict):
        return "the envelope has no properties"
    if "delivery_tag" not in properties:
        return "the envelope has no delivery tag"
    headers = raw.get("headers")
    if headers is not None and not isinstance(headers, dict):
        return "the envelope's headers are not an object"
    body = raw.get("body")
    if body is not None and not isinstance(body, str | bytes):
        return "the envelope's body is not text"
    if body and properties.get("body_encoding") == "base64":
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "the envelope's body is not base64"
    return None


def log_set_aside(queue: str, problem: str, raw: Any) -> None:
    logger.error(
        "set aside an unreadable message on %s: %s: %.*s",
        queue,
        problem,
        LOGGED_BODY_CHARS,
        repr(raw),
    )


class EnvelopeCheckingTransport:
    """Mixin for a kombu virtual Transport: only well-formed envelopes reach the consumer."""

    def _deliver(self, message: Any, queue: str | None) -> None:
        problem = envelope_problem(message)
        if problem is not None:
            log_set_aside(queue or "?", problem, message)
            return
        super()._deliver(message, queue)  # type: ignore[misc]
