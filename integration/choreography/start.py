"""How a choreographed process begins: the gateway publishes the event that asks for it, and the
components take it from there. Nobody tells anybody what to do."""

from __future__ import annotations

from collections.abc import Callable

from integration import bus
from integration.events import (
    ClientErasureRequested,
    ClientRegistered,
    ClientUpdateRequested,
    Event,
    PurchaseRequested,
)
from integration.models import Process, ProcessKind

GATEWAY = "integration"


def _registration(process: Process) -> Event:
    return ClientRegistered(client_id=str(process.client_id), **process.input)


def _update(process: Process) -> Event:
    return ClientUpdateRequested(client_id=str(process.client_id), changes=process.input)


def _purchase(process: Process) -> Event:
    return PurchaseRequested(client_id=str(process.client_id), **process.input)


def _erasure(process: Process) -> Event:
    return ClientErasureRequested(client_id=str(process.client_id))


FIRST_EVENT: dict[str, Callable[[Process], Event]] = {
    ProcessKind.CLIENT_REGISTRATION: _registration,
    ProcessKind.CLIENT_UPDATE: _update,
    ProcessKind.PURCHASE: _purchase,
    ProcessKind.CLIENT_ERASURE: _erasure,
}


def process_begin(process: Process) -> None:
    """Publish the process's first event (inside the creating transaction)."""
    bus.publish(FIRST_EVENT[process.kind](process), source=GATEWAY)
