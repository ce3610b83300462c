"""Choreography: what the integration layer itself does when events arrive. When a client is
erased, what it keeps about them (process inputs, event payloads, the registry) goes too."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from integration import bus
from integration.core import erasure
from integration.events import ClientErased


def scrub_client(sender: Any, event: ClientErased, **kwargs: Any) -> None:
    erasure.scrub_integration(client_id=UUID(event.client_id))


def connect() -> None:
    bus.subscribe(ClientErased, scrub_client, listener="integration.scrub_client")
