"""Erasure inside the integration layer: what it keeps about a client, it forgets.

Process inputs and step results (the registration form, contact details handed between steps),
failure text that may quote them, event payloads, the gateway's registry and stored lookup
answers. The client id
stays, as a tombstone, so that nothing late brings the client back.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from integration import bus, idempotency, lookups
from integration.models import ErasedClientId, Process, RegisteredEmail, Step, TraceEntry


def scrub_integration(*, client_id: UUID) -> dict[str, Any]:
    processes = Process.objects.filter(client_id=client_id)
    scrubbed = processes.exclude(input={}).update(input={})
    Step.objects.filter(process__client_id=client_id).update(result={}, last_error="", traceback="")
    TraceEntry.objects.filter(process__client_id=client_id).exclude(traceback="").update(
        traceback=""
    )
    registry, _ = RegisteredEmail.objects.filter(client_id=client_id).delete()
    ErasedClientId.objects.get_or_create(client_id=client_id)
    answers = lookups.forget_client_answers(client_id)
    events = bus.forget_client_events(client_id=client_id)
    return {
        "processes": scrubbed,
        "registry": registry,
        "lookup_answers": answers,
        "events": events,
        "idempotency_records": idempotency.forget_client(client_id=client_id),
    }
