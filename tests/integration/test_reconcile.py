"""Replica repair, one delivery at a time in this process: drift made behind the bus's back is
found by `manage.py reconcile` with its exact line, and `--repair` sends the owner's state to the
lagging listener alone, until a second reconcile finds nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client as Browser

from common.errors import ApplicationError
from config.env import ConfigError, load
from correspondence.models import Recipient
from crm.models import Client
from integration import actions, bus, gateway
from integration.choreography import reconcile
from integration.events import ClientUpdated
from integration.models import AuditEntry, Delivery, DeliveryStatus, EventRecord, ReconcileRun
from integration.scheduler import jobs
from marketing.models import AudienceMember
from sales.models import CommunicationReplica, CustomerReplica
from tests.integration.helpers import deliver_all, register

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("choreography")]

COPIES = ("sales.customers", "sales.communications", "correspondence.recipients")
EVERY_REPLICA = dict.fromkeys([*COPIES, "marketing.audience"], 0)


def reconcile_output(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue().splitlines()


def registered(**overrides: Any) -> Client:
    """A client registered through choreography, every copy up to date (crm at version 2: the
    welcome email was recorded; the copies hold version 1, the profile they replicate)."""
    process = register(**overrides)
    deliver_all()
    return Client.objects.get(pk=process.client_id)


def update(client: Client, **changes: Any) -> Client:
    gateway.client_update(client_id=client.id, initiator=gateway.SYSTEM, **changes)
    deliver_all()
    client.refresh_from_db()
    return client


def switch(listener: str, state: str) -> None:
    actions.listener_set(name=listener, state=state, by="test")


def profile_of(client_id: UUID) -> tuple[Any, ...]:
    fields = ("email", "first_name", "last_name", "phone", "company", "marketing_consent")
    replica = CustomerReplica.objects.values_list(*fields, "client_version").get(pk=client_id)
    client = Client.objects.values_list(*fields, "version").get(pk=client_id)
    return replica, client


def test_copies_kept_by_the_bus_show_no_difference() -> None:
    registered(marketing_consent=True)

    assert reconcile_output() == ["0 differences"]
    run = ReconcileRun.objects.get()
    assert (run.by, run.clients, run.differences, run.repaired) == (
        "manage.py",
        1,
        EVERY_REPLICA,
        0,
    )
    assert not AuditEntry.objects.filter(action="replicas.repair").exists()


def test_an_update_a_disabled_listener_missed_is_found_and_repaired() -> None:
    client = registered()
    switch("sales.replicate_client_update", "disabled")
    client = update(client, phone="+44 20 7946 1111")
    switch("sales.replicate_client_update", "enabled")

    assert client.version == 3
    assert reconcile_output() == [f"sales.customers {client.id} owner=3 replica=1", "1 differences"]

    assert reconcile_output("--repair") == [
        f"sales.customers {client.id} owner=3 replica=1",
        "1 differences",
        "repaired 1",
    ]
    assert deliver_all() == [("sales.replicate_client_update", "done")]
    replica, owner = profile_of(client.id)
    assert replica == owner
    assert replica[3] == "+44 20 7946 1111"
    assert reconcile_output() == ["0 differences"]
    audit = AuditEntry.objects.get(action="replicas.repair")
    assert (audit.actor, audit.detail) == (
        "manage.py",
        {"differences": {**EVERY_REPLICA, "sales.customers": 1}, "repaired": 1},
    )


def test_the_repair_goes_to_the_lagging_listener_alone_through_the_bus() -> None:
    client = registered()
    switch("correspondence.update_recipient", "disabled")
    client = update(client, first_name="Augusta")
    switch("correspondence.update_recipient", "enabled")

    actions.replicas_repair(by="user:operator")

    record = EventRecord.objects.order_by("-published_at").first()
    assert record is not None
    assert (record.name, record.source, record.process_id, record.payload["client_version"]) == (
        "ClientUpdated",
        "integration",
        None,
        client.version,
    )
    assert list(Delivery.objects.filter(event=record).values_list("listener", "status")) == [
        ("correspondence.update_recipient", DeliveryStatus.SENT)
    ]
    deliver_all()
    assert Recipient.objects.get(pk=client.id).first_name == "Augusta"


def test_deleted_rows_are_missing_from_every_replica_and_sent_again() -> None:
    client = registered(marketing_consent=True)
    CustomerReplica.objects.all().delete()
    CommunicationReplica.objects.all().delete()
    Recipient.objects.all().delete()
    AudienceMember.objects.all().delete()

    expected = [
        f"correspondence.recipients {client.id} owner=2 replica=missing",
        f"marketing.audience {client.id} owner=2 replica=missing",
        f"sales.communications {client.id} owner=1 replica=missing",
        f"sales.customers {client.id} owner=2 replica=missing",
        "4 differences",
    ]
    assert reconcile_output() == expected
    assert reconcile_output("--repair") == [*expected, "repaired 4"]
    assert sorted(deliver_all()) == [
        ("correspondence.update_recipient", "done"),
        ("marketing.sync_audience", "done"),
        ("sales.replicate_client_update", "done"),
        ("sales.replicate_communication", "done"),
    ]
    replica, owner = profile_of(client.id)
    assert replica == owner
    assert CommunicationReplica.objects.get().subject == client.communications.get().subject
    assert Recipient.objects.get().client_version == 2
    assert list(AudienceMember.objects.values_list("client_id", "consent", "client_version")) == [
        (client.id, True, 2)
    ]
    assert reconcile_output() == ["0 differences"]


def test_a_copy_at_an_old_version_is_brought_to_the_owners() -> None:
    client = update(registered(), email="ada@lovelace.example")
    Recipient.objects.update(email="Ada@example.com", client_version=1)

    assert reconcile_output() == [
        f"correspondence.recipients {client.id} owner=3 replica=1",
        "1 differences",
    ]
    reconcile_output("--repair")
    deliver_all()
    recipient = Recipient.objects.get()
    assert (recipient.email, recipient.client_version) == ("ada@lovelace.example", 3)
    assert reconcile_output() == ["0 differences"]


def test_a_repair_never_moves_a_copy_backwards() -> None:
    client = registered()
    stale = reconcile.Difference("sales.customers", client.id, 2, 1)
    CustomerReplica.objects.update(first_name="Newer", client_version=9)

    reconcile.replicas_repair(differences=[stale])
    deliver_all()

    assert CustomerReplica.objects.values_list("first_name", "client_version").get() == (
        "Newer",
        9,
    )


def test_withdrawn_consent_a_listener_missed_is_an_extra_member() -> None:
    client = registered(marketing_consent=True)
    switch("marketing.sync_audience", "disabled")
    client = update(client, marketing_consent=False)
    switch("marketing.sync_audience", "enabled")

    assert reconcile_output() == [
        f"marketing.audience {client.id} owner=3 replica=extra",
        "1 differences",
    ]
    assert reconcile_output("--repair")[-1] == "repaired 1"
    assert deliver_all() == [("marketing.sync_audience", "done")]
    assert AudienceMember.objects.values_list("consent", "client_version").get() == (False, 3)
    assert reconcile_output() == ["0 differences"]


def test_copies_of_an_erased_client_are_extra_and_erased() -> None:
    client = registered()
    switch("sales.erase_client", "disabled")
    gateway.client_erase(client_id=client.id, initiator=gateway.SYSTEM)
    deliver_all()
    switch("sales.erase_client", "enabled")

    expected = [
        f"sales.communications {client.id} owner=0 replica=extra",
        f"sales.customers {client.id} owner=0 replica=extra",
        "2 differences",
    ]
    assert reconcile_output() == expected
    assert reconcile_output("--repair") == [*expected, "repaired 2"]
    assert deliver_all() == [("sales.erase_client", "done")]  # one erasure for both copies
    assert not CustomerReplica.objects.exists()
    assert not CommunicationReplica.objects.exists()
    assert reconcile_output() == ["0 differences"]


def test_work_in_flight_is_not_drift() -> None:
    client = registered()
    switch("sales.replicate_client_update", "paused")
    update(client, company="Analytical Engines Ltd")

    assert Delivery.objects.filter(status=DeliveryStatus.HELD).count() == 1
    assert reconcile_output() == ["0 differences"]


def test_a_listener_still_disabled_gets_no_repair() -> None:
    client = registered()
    switch("sales.replicate_client_update", "disabled")
    client = update(client, last_name="King")

    assert reconcile_output("--repair")[-2:] == ["1 differences", "repaired 0"]
    assert deliver_all() == []
    assert reconcile_output() == [f"sales.customers {client.id} owner=3 replica=1", "1 differences"]


def test_in_orchestration_only_the_audience_is_compared() -> None:
    registered(marketing_consent=True)
    CustomerReplica.objects.all().delete()
    actions.mode_switch(mode="orchestration", changed_by="test")

    assert reconcile_output() == ["0 differences"]
    assert ReconcileRun.objects.get().differences == {"marketing.audience": 0}


def test_comparing_in_chunks_finds_the_same_differences() -> None:
    ids = [registered(email=f"c{n}@example.com").id for n in range(5)]
    CustomerReplica.objects.filter(client_id__in=ids[1:4]).delete()

    whole = reconcile.replicas_compare()
    chunked = reconcile.replicas_compare(chunk=2)

    assert whole.lines() == chunked.lines()
    assert len(whole.differences) == 3
    assert (whole.clients, chunked.clients) == (5, 5)


def test_publish_to_honours_the_listeners_switch() -> None:
    client = registered()
    event = ClientUpdated(
        client_id=str(client.id),
        client_version=client.version,
        email=client.email,
        first_name=client.first_name,
        last_name=client.last_name,
        phone=client.phone,
        company=client.company,
        marketing_consent=client.marketing_consent,
        registered_at=client.registered_at.isoformat(),
    )

    with pytest.raises(
        ApplicationError, match=r"replicate_client does not listen to ClientUpdated"
    ):
        bus.publish_to([event], listener="sales.replicate_client", source="integration")
    switch("sales.replicate_client_update", "paused")
    [held] = bus.publish_to([event], listener="sales.replicate_client_update", source="test")
    assert held is not None and held.status == DeliveryStatus.HELD
    switch("sales.replicate_client_update", "disabled")
    assert bus.publish_to([event], listener="sales.replicate_client_update", source="test") == [
        None
    ]


def test_each_replica_names_listeners_the_bus_knows() -> None:
    known = {entry.name for entry in bus.registry()}

    for replica in reconcile.REPLICAS:
        assert {*replica.listeners, replica.update, replica.erase} <= known, replica.name


# --- the scheduler ------------------------------------------------------------------------------


def test_the_scheduled_reconcile_keeps_its_result_and_repairs_nothing() -> None:
    client = registered()
    CustomerReplica.objects.all().delete()

    assert jobs.reconcile_replicas() == {"sales.customers": 1}

    run = ReconcileRun.objects.get()
    assert (run.by, run.differences, run.repaired) == (
        "scheduler",
        {**EVERY_REPLICA, "sales.customers": 1},
        0,
    )
    assert run.started_at <= run.finished_at
    assert not Delivery.objects.filter(listener="sales.replicate_client_update").exists()
    assert not CustomerReplica.objects.filter(pk=client.id).exists()
    assert not AuditEntry.objects.filter(action="replicas.repair").exists()


def test_a_reconcile_interval_of_zero_turns_it_off(settings: Any) -> None:
    settings.RECONCILE_INTERVAL = 0

    assert jobs.reconcile_replicas() is None
    assert not ReconcileRun.objects.exists()


def test_reconcile_interval_comes_from_the_environment() -> None:
    base = Path("/srv/ensemble")

    assert load({"DEBUG": "1"}, base).reconcile_interval == 3600
    assert load({"DEBUG": "1", "RECONCILE_INTERVAL": "0"}, base).reconcile_interval == 0
    assert load({"DEBUG": "1", "RECONCILE_INTERVAL": "90"}, base).reconcile_interval == 90
    with pytest.raises(ConfigError, match="RECONCILE_INTERVAL"):
        load({"DEBUG": "1", "RECONCILE_INTERVAL": "-5"}, base)


# --- where drift shows --------------------------------------------------------------------------


@pytest.fixture
def operator() -> Browser:
    user = get_user_model().objects.create_user("operator", password="x" * 12, is_staff=True)
    user.groups.add(Group.objects.get(name="Operations"))
    browser = Browser()
    browser.force_login(user)
    return browser


def test_the_dashboard_shows_the_last_reconciles_drift(operator: Browser) -> None:
    assert "Replica drift: never run." in operator.get("/").content.decode()

    registered()
    CustomerReplica.objects.all().delete()
    reconcile_output()
    page = operator.get("/").content.decode()

    run = ReconcileRun.objects.get()
    assert "Replica drift at the last" in page
    assert f'<time datetime="{run.finished_at.isoformat()}' in page
    assert "<strong>sales.customers 1</strong>" in page
    assert "sales.communications 0" in page


def test_the_admin_lists_reconciles_newest_first_read_only(operator: Browser) -> None:
    registered()
    reconcile_output()
    CustomerReplica.objects.all().delete()
    reconcile_output()

    page = operator.get("/admin/integration/reconcilerun/").content.decode()

    assert page.index("sales.customers 1") < page.index("sales.customers 0")
    run = ReconcileRun.objects.order_by("started_at").first()
    assert run is not None
    assert operator.get(f"/admin/integration/reconcilerun/{run.pk}/change/").status_code == 200
    assert operator.get("/admin/integration/reconcilerun/add/").status_code == 403
