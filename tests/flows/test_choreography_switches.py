"""Choreography's listener switches and erasure, with one worker for every component."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import transaction

from common.errors import NotFound
from correspondence.models import Message, Recipient
from crm import services as crm_services
from crm.models import Client, Communication
from integration import actions, bus, gateway
from integration.choreography import switches
from integration.models import Delivery, DeliveryStatus, EventRecord, Process, RegisteredEmail
from marketing.models import AudienceMember
from sales.models import CustomerReplica
from tests.flows.test_choreography import REGISTRATION, delivered, published, register
from tests.flows.test_choreography_faults import updated_event
from tests.support import flows
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def choreography_mode() -> None:
    actions.mode_switch(mode="choreography")


def test_a_disabled_listener_is_invisible_to_every_other_component(all_workers: Any) -> None:
    # Given no welcome emails
    actions.listener_set(name="correspondence.send_welcome_email", state="disabled", by="test")

    process = register()
    flows.wait_for_status(process.id)

    # Then the process completes without it, and everything else is as always
    expected = REGISTRATION - Counter(
        [
            delivered("correspondence", "ClientCreated"),
            ("correspondence", "send_email", "step", "sent", 1),
            published("correspondence", "WelcomeEmailSent"),
            delivered("crm", "WelcomeEmailSent"),
            published("crm", "CommunicationRecorded"),
            delivered("sales", "CommunicationRecorded"),
        ]
    )
    assert Counter(flows.trace_of(process.id)) == expected
    assert (Message.objects.count(), Communication.objects.count()) == (0, 0)
    assert CustomerReplica.objects.count() == 1 and Recipient.objects.count() == 1
    assert AudienceMember.objects.count() == 1


@pytest.mark.broker
def test_a_paused_component_holds_its_backlog_and_delivers_it_on_resume(all_workers: Any) -> None:
    actions.listener_set(name="sales", state="paused", by="test")

    process = register()
    # crm publishing the communication it recorded is the last thing that happens without sales
    flows.wait_for_trace(
        process.id, lambda entry: entry == published("crm", "CommunicationRecorded")
    )
    states = {name: (state, backlog) for name, state, backlog in switches.listener_states()}
    assert Process.objects.get(pk=process.id).status == "running"
    assert states["sales.replicate_client"] == ("paused", 1)
    assert states["sales.replicate_communication"] == ("paused", 1)
    assert CustomerReplica.objects.count() == 0

    actions.listener_set(name="sales", state="enabled", by="test")
    flows.wait_for_status(process.id)

    assert Counter(flows.trace_of(process.id)) == REGISTRATION
    assert CustomerReplica.objects.count() == 1


def test_a_backlog_of_a_thousand_events_is_caught_up_after_resume(all_workers: Any) -> None:
    # Given the replicas' owners are paused while crm changes 250 clients four times each
    for component in ("sales", "correspondence", "marketing"):
        actions.listener_set(name=component, state="paused", by="test")
    for index in range(250):
        client = crm_services.client_create(
            client_id=uuid.uuid4(),
            email=f"c{index}@example.com",
            first_name="C",
            last_name=str(index),
            marketing_consent=index % 2 == 0,
        )
        for change in range(4):
            with transaction.atomic():
                client = crm_services.client_update(
                    client_id=client.id,
                    last_name=f"{index}-{change}",
                    marketing_consent=(index + change) % 2 == 0,
                )
                bus.publish(updated_event(client), source="crm")
    held = Delivery.objects.filter(status=DeliveryStatus.HELD).count()
    assert held == 3 * 1000

    # When they resume
    for component in ("sales", "correspondence", "marketing"):
        actions.listener_set(name=component, state="enabled", by="test")
    wait_until(
        lambda: not Delivery.objects.filter(status__in=bus.OPEN).exists(),
        timeout=180,
        interval=0.5,
        describe=switches.listener_states,
    )

    # Then every replica equals its master
    assert Delivery.objects.filter(status=DeliveryStatus.DONE).count() == 3000
    masters = {c.id: c for c in Client.objects.all()}
    replicas = {r.client_id: r for r in CustomerReplica.objects.all()}
    recipients = {r.client_id: r for r in Recipient.objects.all()}
    members = {m.client_id: m for m in AudienceMember.objects.all()}
    assert set(replicas) == set(masters) == set(recipients) == set(members)
    for client_id, master in masters.items():
        replica = replicas[client_id]
        assert (replica.last_name, replica.marketing_consent, replica.client_version) == (
            master.last_name,
            master.marketing_consent,
            master.version,
        )
        assert recipients[client_id].client_version == master.version
        assert members[client_id].consent == master.marketing_consent


def test_erasure_reaches_every_copy_and_a_late_event_brings_nothing_back(
    all_workers: Any,
) -> None:
    registration = register()
    flows.wait_for_status(registration.id)
    client_id = registration.client_id
    created = EventRecord.objects.get(name="ClientCreated")

    erasure = gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)
    flows.wait_for_status(erasure.id)
    # A replay of the old ClientCreated reaches sales after the erasure
    replay = actions.event_replay(event_id=created.id, listener="sales.replicate_client", by="test")
    wait_until(lambda: Delivery.objects.get(pk=replay.id).status not in bus.OPEN, timeout=15)

    assert Delivery.objects.get(pk=replay.id).status == "skipped"
    assert Client.objects.count() == 0 and CustomerReplica.objects.count() == 0
    assert Recipient.objects.count() == 0 and AudienceMember.objects.count() == 0
    assert set(Message.objects.values_list("recipient", flat=True)) == {"erased@invalid"}
    kept = EventRecord.objects.filter(client_id=client_id).exclude(payload={})
    assert set(kept.values_list("name", flat=True)) == {"ClientErasureRequested", "ClientErased"}
    assert all(
        set(payload) == {"client_id", "schema_version"}
        for payload in kept.values_list("payload", flat=True)
    )
    assert not RegisteredEmail.objects.filter(client_id=client_id).exists()
    assert Process.objects.get(pk=registration.id).input == {}
    with pytest.raises(NotFound):
        gateway.client_details(client_id=client_id)
    # and the email may register again
    again = register()
    flows.wait_for_status(again.id)
    assert Client.objects.get().id == again.client_id
