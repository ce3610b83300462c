"""Choreography: what Marketing does when other components' events arrive.

Marketing keeps its audience: clients who consent join it, withdrawn consent leaves it, in the
order crm made the changes (client versions), whatever order the events arrive in.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from integration import bus
from integration.events import ClientCreated, ClientErased, ClientState, ClientUpdated
from marketing import services


def sync_audience(sender: Any, event: ClientState, **kwargs: Any) -> None:
    if isinstance(event, ClientCreated) and not event.marketing_consent:
        return  # nobody joins without consent; nothing to remember either
    services.audience_apply(
        client_id=UUID(event.client_id),
        email=event.email,
        consent=event.marketing_consent,
        client_version=event.client_version,
    )


def erase_client(sender: Any, event: ClientErased, **kwargs: Any) -> None:
    services.marketing_erase_client(client_id=UUID(event.client_id))


def connect() -> None:
    """Called from MarketingConfig.ready(): who marketing listens to."""
    bus.subscribe(ClientCreated, sync_audience, listener="marketing.join_audience")
    bus.subscribe(ClientUpdated, sync_audience, listener="marketing.sync_audience")
    bus.subscribe(ClientErased, erase_client, listener="marketing.erase_client")
