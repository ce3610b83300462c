"""Choreography when components are down, slow, switched off, or handed bad events. No worker
runs here but those each test starts."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import transaction

from common import correlation
from correspondence.models import Message, Recipient
from crm import services as crm_services
from crm.models import Client, Communication
from integration import actions, bus
from integration.events import ClientCreated, ClientUpdated
from integration.models import (
    Delivery,
    EventRecord,
    Process,
    ProcessKind,
)
from marketing.models import AudienceMember
from sales.models import CustomerReplica
from tests.flows.test_choreography import REGISTRATION, register
from tests.support import flows, processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

OTHERS = "sales,marketing,correspondence,integration"


@pytest.fixture(autouse=True)
def choreography_mode() -> None:
    actions.mode_switch(mode="choreography")


def created_event(client: Client) -> ClientCreated:
    return ClientCreated(
        client_id=str(client.id),
        client_version=client.version,
        registered_at=client.registered_at.isoformat(),
        email=client.email,
        first_name=client.first_name,
        last_name=client.last_name,
        phone=client.phone,
        company=client.company,
        marketing_consent=client.marketing_consent,
    )


def updated_event(client: Client) -> ClientUpdated:
    created = created_event(client)
    return ClientUpdated(**{k: v for k, v in created.payload().items() if k != "schema_version"})


@pytest.mark.broker
def test_crm_down_events_wait_and_the_process_completes_when_it_is_back(
    fast_retries: dict[str, str], scheduler: Any
) -> None:
    others = flows.start_workers(OTHERS, fast_retries)
    try:
        # Given crm's workers are stopped
        process = register()
        # the sweeper has put the delivery on the broker again: a redelivery timeout passed
        wait_until(lambda: Delivery.objects.get(process=process).sends > 1, timeout=15)
        waiting = Delivery.objects.get(process=process)
        assert Process.objects.get(pk=process.id).status == "running"
        assert (waiting.status, waiting.attempts, waiting.sends > 1) == ("sent", 0, True)
        # When crm is back, then everything happens, once
        crm = flows.start_workers("crm", fast_retries)
        try:
            flows.wait_for_status(process.id, timeout=30)
        finally:
            crm.stop()
    finally:
        others.stop()
    assert Counter(flows.trace_of(process.id)) == REGISTRATION
    assert (Client.objects.count(), Communication.objects.count(), Message.objects.count()) == (
        1,
        1,
        1,
    )


@pytest.mark.broker
def test_events_in_reverse_order_leave_every_replica_equal_to_the_master(
    fast_retries: dict[str, str],
) -> None:
    workers = flows.start_workers(OTHERS, fast_retries)
    try:
        # Given crm changed a client twice after creating it
        client = crm_services.client_create(
            client_id=uuid.uuid4(),
            email="r@example.com",
            first_name="R",
            last_name="One",
            marketing_consent=True,
        )
        first = created_event(client)
        crm_services.client_update(client_id=client.id, last_name="Two")
        second = updated_event(Client.objects.get())
        crm_services.client_update(client_id=client.id, last_name="Three", marketing_consent=False)
        master = Client.objects.get()
        third = updated_event(master)
        # When the events arrive newest first
        for event in (third, second, first):
            record = bus.publish(event, source="crm")
            wait_settled(record)
    finally:
        workers.stop()
    # Then every copy holds the master's latest version
    replica = CustomerReplica.objects.get()
    assert (replica.last_name, replica.marketing_consent, replica.client_version) == (
        "Three",
        False,
        master.version,
    )
    assert Recipient.objects.get().client_version == master.version
    member = AudienceMember.objects.get()
    assert (member.consent, member.client_version) == (False, master.version)


def wait_settled(record: EventRecord, timeout: float = 30) -> None:
    wait_until(
        lambda: not Delivery.objects.filter(event=record, status__in=bus.OPEN).exists(),
        timeout=timeout,
        interval=0.05,
        describe=lambda: f"{record.name} still has open deliveries",
    )


@pytest.mark.broker
def test_a_poison_event_is_dead_after_its_retries_and_later_events_still_flow(
    fast_retries: dict[str, str], scheduler: Any
) -> None:
    workers = flows.start_workers(flows.ALL, fast_retries)
    try:
        # Given an event whose payload no listener can read
        poisoned = Process.objects.create(
            kind=ProcessKind.CLIENT_REGISTRATION, mode="choreography", client_id=uuid.uuid4()
        )
        with correlation.bound(poisoned.id), transaction.atomic():
            record = bus.publish(_poison(), source="crm")
            EventRecord.objects.filter(pk=record.id).update(payload={"client_id": "not-a-uuid"})
        failed = flows.wait_for_status(poisoned.id, {"failed"}, timeout=30)
        wait_settled(record)  # the first dead delivery fails the process; the others follow
        # And a registration after it
        process = register()
        flows.wait_for_status(process.id)
    finally:
        workers.stop()
    dead = Delivery.objects.filter(event=record)
    assert {d.status for d in dead} == {"dead"}
    assert {d.attempts for d in dead} == {3}
    trace = flows.trace_of(failed.id)
    assert Counter(e[3] for e in trace if e[2] == "retry") == Counter({"error": 2 * dead.count()})
    assert Counter(e[3] for e in trace if e[2] == "failure") == Counter({"dead": dead.count()})
    assert Counter(flows.trace_of(process.id)) == REGISTRATION


def _poison() -> ClientUpdated:
    return ClientUpdated(
        client_id=str(uuid.uuid4()),
        client_version=1,
        email="p@example.com",
        first_name="P",
        last_name="P",
        phone="",
        company="",
        marketing_consent=False,
        registered_at="2026-01-01T00:00:00+00:00",
    )


@pytest.mark.broker
def test_a_process_that_stops_moving_is_stuck_and_completes_when_work_reaches_it(
    fast_retries: dict[str, str], settings: Any
) -> None:
    settings.STUCK_AFTER = 1
    env = {**fast_retries, "STUCK_AFTER": "1"}
    others = flows.start_workers(OTHERS, env)
    monitor = processes.start_scheduler(env)
    try:
        # Given crm is down, the registration waits with work pending and nothing moves
        process = register()
        stuck = flows.wait_for_status(process.id, {"stuck"}, timeout=30)
        assert stuck.finished_at is None
        # When crm is back, the work reaches the process and it ends normally
        crm = flows.start_workers("crm", env)
        try:
            flows.wait_for_status(process.id, timeout=30)
        finally:
            crm.stop()
    finally:
        others.stop()
        monitor.stop()
    trace = flows.trace_of(process.id)
    stuck_at = trace.index(("integration", "client_registration", "failure", "stuck", 1))
    assert trace[stuck_at + 1] == ("integration", "client_registration", "action", "running", 1)
    assert Counter(trace) - REGISTRATION == Counter(
        [
            ("integration", "client_registration", "failure", "stuck", 1),
            ("integration", "client_registration", "action", "running", 1),
        ]
    )
