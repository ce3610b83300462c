"""Choreographed processes with real workers: nobody tells anybody what to do."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from correspondence.models import Message, Recipient
from crm.models import Client, Communication
from integration import actions, bus, gateway
from integration.models import Delivery, DeliveryStatus, ProcessedMessage
from marketing.models import AudienceMember
from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase
from tests.flows.test_orchestration import ADA
from tests.support import flows

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def choreography_mode() -> None:
    actions.mode_switch(mode="choreography")


def register(**overrides: Any) -> Any:
    return gateway.client_register(**{**ADA, **overrides}, initiator=gateway.SYSTEM)


def published(component: str, event: str) -> tuple[Any, ...]:
    return (component, event, "event", "published", 1)


def delivered(component: str, event: str) -> tuple[Any, ...]:
    return (component, event, "delivery", "done", 1)


REGISTRATION = Counter(
    [
        ("integration", "client_registration", "action", "started", 1),
        published("integration", "ClientRegistered"),
        delivered("crm", "ClientRegistered"),
        published("crm", "ClientCreated"),
        delivered("sales", "ClientCreated"),
        delivered("correspondence", "ClientCreated"),
        delivered("correspondence", "ClientCreated"),
        delivered("marketing", "ClientCreated"),
        ("correspondence", "send_email", "step", "sent", 1),
        published("correspondence", "WelcomeEmailSent"),
        delivered("crm", "WelcomeEmailSent"),
        published("crm", "CommunicationRecorded"),
        delivered("sales", "CommunicationRecorded"),
        ("integration", "client_registration", "action", "completed", 1),
    ]
)


@pytest.mark.broker
def test_registration_completes_through_events_alone(all_workers: Any) -> None:
    process = register()
    finished = flows.wait_for_status(process.id)

    trace = flows.trace_of(process.id)
    assert finished.mode == "choreography"
    assert Counter(trace) == REGISTRATION
    assert trace[0] == ("integration", "client_registration", "action", "started", 1)
    assert trace[-1] == ("integration", "client_registration", "action", "completed", 1)
    client = Client.objects.get()
    replica = CustomerReplica.objects.get()
    assert (replica.client_id, replica.email, replica.client_version) == (
        client.id,
        client.email,
        1,
    )
    assert CustomerAccount.objects.filter(client_id=client.id).count() == 1
    assert Recipient.objects.get().email == "Ada@example.com"
    assert Message.objects.get().template_key == "welcome"
    communication = Communication.objects.get()
    assert CommunicationReplica.objects.get().id == communication.id
    assert list(AudienceMember.objects.values_list("client_id", "consent")) == [(client.id, True)]
    assert Delivery.objects.filter(status=DeliveryStatus.DONE).count() == 7


def test_purchase_flows_from_sales_to_crm_and_correspondence(all_workers: Any) -> None:
    registration = register()
    flows.wait_for_status(registration.id)
    order = {"order_ref": "SHOP-7", "total": "12.50", "currency": "EUR"}

    process, created = gateway.purchase_record(
        client_id=registration.client_id, **order, initiator=gateway.SYSTEM
    )
    flows.wait_for_status(process.id)

    assert created is True
    assert Counter(flows.trace_of(process.id)) == Counter(
        [
            ("integration", "purchase", "action", "started", 1),
            published("integration", "PurchaseRequested"),
            delivered("sales", "PurchaseRequested"),
            published("sales", "PurchaseRecorded"),
            delivered("crm", "PurchaseRecorded"),
            delivered("correspondence", "PurchaseRecorded"),
            ("correspondence", "send_email", "step", "sent", 1),
            published("correspondence", "ReceiptSent"),
            delivered("crm", "ReceiptSent"),
            published("crm", "CommunicationRecorded"),
            delivered("sales", "CommunicationRecorded"),
            ("integration", "purchase", "action", "completed", 1),
        ]
    )
    assert Purchase.objects.get().order_ref == "SHOP-7"
    assert Client.objects.get().lifetime_values == {"EUR": "12.50"}
    assert CommunicationReplica.objects.count() == 2
    details = gateway.client_details(client_id=registration.client_id)
    assert [p["order_ref"] for p in details["purchases"]] == ["SHOP-7"]
    assert details["served_by"]["source"] == "sales-replica"


def test_withdrawn_consent_leaves_the_audience_and_every_copy_converges(all_workers: Any) -> None:
    registration = register()
    flows.wait_for_status(registration.id)

    update = gateway.client_update(
        client_id=registration.client_id,
        **{"marketing_consent": False, "phone": "+44 1", "email": "ada@new.example"},
        initiator=gateway.SYSTEM,
    )
    flows.wait_for_status(update.id)

    client = Client.objects.get()
    replica = CustomerReplica.objects.get()
    assert (client.email, client.phone, client.marketing_consent) == (
        "ada@new.example",
        "+44 1",
        False,
    )
    assert (replica.email, replica.phone, replica.marketing_consent) == (
        "ada@new.example",
        "+44 1",
        False,
    )
    assert replica.client_version == client.version
    assert Recipient.objects.get().email == "ada@new.example"
    member = AudienceMember.objects.get()
    assert (member.consent, member.left_at is not None) == (False, True)


@pytest.mark.broker
def test_the_same_delivery_twice_and_concurrently_has_one_effect(all_workers: Any) -> None:
    # Given a registration whose first delivery is on the broker three times at once
    process = register(marketing_consent=False)
    delivery = Delivery.objects.get(process=process)
    for _ in range(3):
        bus.relay.send_now(bus._outgoing(delivery))

    flows.wait_for_status(process.id)

    assert Client.objects.count() == 1
    assert ProcessedMessage.objects.filter(message_id=delivery.id).count() == 1
    assert Counter(flows.trace_of(process.id))[delivered("crm", "ClientRegistered")] == 1
