"""Filling the replicas from their owners, before choreography answers from them.

Switching the mode to choreography first brings every replica (sales' customers and
communications, correspondence's recipients, marketing's audience) up to what crm holds, at the
client's current version: the comparison of `reconcile` finds what is behind or missing, and only
that is written. Replicas that are newer stay as they are. (The mode switch in
integration/actions.py audits the fill.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import transaction

from correspondence import services as correspondence_services
from crm import handlers as crm_handlers
from crm.models import Client, Communication
from integration.choreography import reconcile
from marketing import services as marketing_services
from sales import services as sales_services
from sales.models import CommunicationReplica

BATCH = 500


def replicas_fill() -> dict[str, int]:
    """Bring every replica up to its owner before choreography answers from them: compared in
    bulk, by client version, and only what is behind or missing is written (a switch with the
    replicas current writes nothing), a batch per transaction so that running processes are
    never held up for long. Counts of the clients and communications filled."""
    reconciliation = reconcile.replicas_compare(replicas=reconcile.REPLICAS)
    lagging = {d.client_id for d in reconciliation.differences if d.held != reconcile.EXTRA}
    counts = {"clients": 0, "communications": 0}
    clients = Client.objects.filter(id__in=lagging).order_by("registered_at", "id")
    for batch in _batches(clients.iterator(chunk_size=BATCH)):
        with transaction.atomic():
            for client in batch:
                _fill_client(client)
        counts["clients"] += len(batch)
    held = set(
        CommunicationReplica.objects.filter(client_id__in=lagging).values_list("id", flat=True)
    )
    missing = (
        Communication.objects.filter(client_id__in=lagging)
        .exclude(id__in=held)
        .order_by("occurred_at")
    )
    for batch in _batches(missing.iterator(chunk_size=BATCH)):
        with transaction.atomic():
            for communication in batch:
                sales_services.communication_replica_add(
                    communication_id=communication.id,
                    client_id=communication.client_id,
                    channel=communication.channel,
                    subject=communication.subject,
                    occurred_at=communication.occurred_at,
                )
        counts["communications"] += len(batch)
    return counts


def _batches(rows: Iterator[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fill_client(client: Client) -> None:
    profile: Any = {
        "email": client.email,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "phone": client.phone,
        "company": client.company,
        "marketing_consent": client.marketing_consent,
        "registered_at": client.registered_at,
    }
    sales_services.customer_replica_apply(
        client_id=client.id, client_version=client.version, profile=profile
    )
    correspondence_services.recipient_apply(
        client_id=client.id,
        client_version=client.version,
        email=client.email,
        first_name=client.first_name,
    )
    if client.marketing_consent:
        marketing_services.audience_apply(
            client_id=client.id, email=client.email, consent=True, client_version=client.version
        )


def communication_share(communication: Communication) -> None:
    """A person recorded a communication with crm directly (not through a process): in
    choreography crm tells the components that keep a copy, as its handlers do."""
    crm_handlers.publish_communication(communication)
