"""Erasure inside the integration layer: what it keeps about a client, it forgets.

Process inputs and step results (the registration form, contact details handed between steps),
failure text that may quote them, event payloads and the gateway's registry; what the layers
above keep (stored lookup answers, the API's idempotency records) their receivers of
`client_scrubbed` forget. The client id stays, as a tombstone, so that nothing late brings the
client back.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from integration.core import signals
from integration.models import (
    ErasedClientId,
    EventRecord,
    Process,
    RegisteredEmail,
    Step,
    TraceEntry,
)

# Events that must reach their listeners even once the client is erased (they carry only the id).
ERASURE_EVENTS = {"ClientErasureRequested", "ClientErased"}


def scrub_integration(*, client_id: UUID) -> dict[str, Any]:
    processes = Process.objects.filter(client_id=client_id)
    scrubbed = processes.exclude(input={}).update(input={})
    Step.objects.filter(process__client_id=client_id).update(result={}, last_error="", traceback="")
    TraceEntry.objects.filter(process__client_id=client_id).exclude(traceback="").update(
        traceback=""
    )
    registry, _ = RegisteredEmail.objects.filter(client_id=client_id).delete()
    ErasedClientId.objects.get_or_create(client_id=client_id)
    counts: dict[str, Any] = {
        "processes": scrubbed,
        "registry": registry,
        "events": forget_client_events(client_id=client_id),
    }
    for _, answer in signals.client_scrubbed.send(sender=Process, client_id=client_id):
        if isinstance(answer, dict):
            counts.update(answer)
    return counts


def forget_client_events(*, client_id: UUID) -> int:
    """The payloads of a client's events (personal data) are wiped. The erasure events
    themselves carry nothing but the id, and their listeners still need it."""
    return (
        EventRecord.objects.filter(client_id=client_id)
        .exclude(payload={})
        .exclude(name__in=ERASURE_EVENTS)
        .update(payload={})
    )
