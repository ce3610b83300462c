"""Filling the replicas from their owners, before choreography answers from them.

Switching the mode to choreography first copies what crm holds into every replica (sales'
customers and communications, correspondence's recipients, marketing's audience), at the client's
current version, so that details never answer 404 for a client crm knows. Replicas that are newer
stay as they are. (The mode switch in integration/actions.py audits the fill.)
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from correspondence import services as correspondence_services
from crm import handlers as crm_handlers
from crm.models import Client, Communication
from marketing import services as marketing_services
from sales import services as sales_services

BATCH = 500


def replicas_fill() -> dict[str, int]:
    counts = {"clients": 0, "communications": 0}
    clients = Client.objects.order_by("registered_at", "id")
    for start in range(0, clients.count(), BATCH):
        with transaction.atomic():
            for client in clients[start : start + BATCH]:
                _fill_client(client)
                counts["clients"] += 1
    for communication in Communication.objects.order_by("occurred_at").iterator(chunk_size=BATCH):
        sales_services.communication_replica_add(
            communication_id=communication.id,
            client_id=communication.client_id,
            channel=communication.channel,
            subject=communication.subject,
            occurred_at=communication.occurred_at,
        )
        counts["communications"] += 1
    return counts


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
