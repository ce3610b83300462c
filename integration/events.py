"""The events business apps publish and listen to: the contract between them.

Events are small and versioned: ids, the few attributes listeners need, a schema version, and for
client data a per-client version so that replicas apply changes in order and ignore old ones.
This module imports no business app.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Event:
    name: ClassVar[str]
    client_id: str
    schema_version: int = field(default=SCHEMA_VERSION)

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Event:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in known})


@dataclass(frozen=True, kw_only=True)
class ClientRegistered(Event):
    """A shop or a marketer asked for a client to be registered (published by the gateway)."""

    name: ClassVar[str] = "ClientRegistered"
    email: str
    first_name: str
    last_name: str
    phone: str = ""
    company: str = ""
    marketing_consent: bool = False


@dataclass(frozen=True, kw_only=True)
class ClientState(Event):
    """The whole profile crm holds for a client, at one version (what replicas keep)."""

    client_version: int
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    marketing_consent: bool
    registered_at: str


@dataclass(frozen=True, kw_only=True)
class ClientCreated(ClientState):
    """crm created the master record."""

    name: ClassVar[str] = "ClientCreated"


@dataclass(frozen=True, kw_only=True)
class ClientUpdateRequested(Event):
    """Somebody asked for a change to a client (published by the gateway)."""

    name: ClassVar[str] = "ClientUpdateRequested"
    changes: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ClientUpdated(ClientState):
    """crm changed the master record."""

    name: ClassVar[str] = "ClientUpdated"


@dataclass(frozen=True, kw_only=True)
class WelcomeEmailSent(Event):
    name: ClassVar[str] = "WelcomeEmailSent"
    message_id: str
    subject: str
    sent_at: str


@dataclass(frozen=True, kw_only=True)
class CommunicationRecorded(Event):
    name: ClassVar[str] = "CommunicationRecorded"
    communication_id: str
    channel: str
    subject: str
    occurred_at: str


@dataclass(frozen=True, kw_only=True)
class PurchaseRequested(Event):
    """The shop posted an order (published by the gateway)."""

    name: ClassVar[str] = "PurchaseRequested"
    order_ref: str
    total: str
    currency: str
    purchased_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class PurchaseRecorded(Event):
    name: ClassVar[str] = "PurchaseRecorded"
    purchase_id: str
    order_ref: str
    total: str
    currency: str
    purchased_at: str


@dataclass(frozen=True, kw_only=True)
class ReceiptSent(Event):
    name: ClassVar[str] = "ReceiptSent"
    message_id: str
    order_ref: str
    subject: str
    sent_at: str


@dataclass(frozen=True, kw_only=True)
class ClientErasureRequested(Event):
    name: ClassVar[str] = "ClientErasureRequested"


@dataclass(frozen=True, kw_only=True)
class ClientErased(Event):
    name: ClassVar[str] = "ClientErased"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        ClientRegistered,
        ClientCreated,
        ClientUpdateRequested,
        ClientUpdated,
        WelcomeEmailSent,
        CommunicationRecorded,
        PurchaseRequested,
        PurchaseRecorded,
        ReceiptSent,
        ClientErasureRequested,
        ClientErased,
    )
}
