"""Replica repair with real workers: a disabled listener misses an update, `manage.py reconcile`
shows it, `--repair` sends crm's state to that listener alone, and its worker brings the copy up."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from crm.models import Client
from integration import actions, gateway
from sales.models import CustomerReplica
from tests.flows.test_choreography import register
from tests.support import flows
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def choreography_mode() -> None:
    actions.mode_switch(mode="choreography")


def reconcile(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue().splitlines()


def test_an_update_a_disabled_listener_missed_is_repaired_by_its_worker(all_workers: Any) -> None:
    registration = register()
    flows.wait_for_status(registration.id)
    client_id = registration.client_id
    actions.listener_set(name="sales.replicate_client_update", state="disabled", by="test")
    update = gateway.client_update(
        client_id=client_id, company="Difference Engines", initiator=gateway.SYSTEM
    )
    flows.wait_for_status(update.id)
    actions.listener_set(name="sales.replicate_client_update", state="enabled", by="test")
    version = Client.objects.get(pk=client_id).version

    line = f"sales.customers {client_id} owner={version} replica=1"
    assert reconcile() == [line, "1 differences"]
    assert reconcile("--repair") == [line, "1 differences", "repaired 1"]

    replica = wait_until(
        lambda: CustomerReplica.objects.filter(pk=client_id, client_version=version).first(),
        timeout=30,
        close_connections=True,
    )
    assert replica.company == "Difference Engines"
    assert reconcile() == ["0 differences"]
