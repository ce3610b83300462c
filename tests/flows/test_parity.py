"""Parity: the same business processes give the same business outcome in both modes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from correspondence.models import Message
from crm.models import Client
from integration import actions, gateway
from marketing.models import AudienceMember
from sales.models import Purchase
from tests.flows.test_orchestration import ADA
from tests.support import flows

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

MODES = ["orchestration", "choreography"]
JANUARY = datetime(2026, 1, 1, 10, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, 10, tzinfo=UTC)

EXPECTED_DETAILS = {
    "email": "ada@analytical.example",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+44 20 7946 0001",
    "company": "Analytical Engines",
    "marketing_consent": False,
    "communications": [
        ("email", "Your receipt for order SHOP-2"),
        ("email", "Your receipt for order SHOP-1"),
        ("email", "Welcome to Ensemble, Ada"),
    ],
    "purchases": [("SHOP-2", "5.00", "USD"), ("SHOP-1", "59.90", "EUR")],
}


def business_outcome(details: dict[str, Any]) -> dict[str, Any]:
    """The details payload without what differs by nature between two runs."""
    outcome = {key: details[key] for key in EXPECTED_DETAILS if key in details}
    outcome["communications"] = [(c["channel"], c["subject"]) for c in details["communications"]]
    outcome["purchases"] = [
        (p["order_ref"], p["total"], p["currency"]) for p in details["purchases"]
    ]
    return outcome


@pytest.mark.parametrize("mode", MODES)
def test_register_buy_and_change_give_the_same_outcome_in_both_modes(
    mode: str, all_workers: Any
) -> None:
    actions.mode_switch(mode=mode)
    registration = gateway.client_register(**ADA, initiator=gateway.SYSTEM)
    flows.wait_for_status(registration.id)
    client_id = registration.client_id
    orders: list[dict[str, Any]] = [
        {"order_ref": "SHOP-1", "total": "59.90", "currency": "EUR", "purchased_at": JANUARY},
        {"order_ref": "SHOP-2", "total": "5", "currency": "usd", "purchased_at": FEBRUARY},
    ]
    for order in orders:
        process, _ = gateway.purchase_record(client_id=client_id, **order, initiator=gateway.SYSTEM)
        flows.wait_for_status(process.id)
    update = gateway.client_update(
        client_id=client_id,
        **{
            "email": "ada@analytical.example",
            "phone": "+44 20 7946 0001",
            "marketing_consent": False,
        },
        initiator=gateway.SYSTEM,
    )
    flows.wait_for_status(update.id)

    details = gateway.client_details(client_id=client_id)

    assert business_outcome(details) == EXPECTED_DETAILS
    assert details["served_by"]["mode"] == mode
    assert details["served_by"]["source"] == (
        "orchestrator" if mode == "orchestration" else "sales-replica"
    )
    assert details["served_by"]["unavailable"] == []
    client = Client.objects.get()
    assert (client.lifetime_values, client.purchase_count) == ({"EUR": "59.90", "USD": "5.00"}, 2)
    assert Purchase.objects.count() == 2
    assert sorted(Message.objects.values_list("template_key", flat=True)) == [
        "receipt",
        "receipt",
        "welcome",
    ]
    assert list(AudienceMember.objects.filter(consent=True)) == []


@pytest.mark.parametrize("mode", MODES)
def test_erasure_removes_the_client_from_every_component_in_both_modes(
    mode: str, all_workers: Any
) -> None:
    from common.errors import NotFound
    from crm.models import Communication
    from integration.models import Process, RegisteredEmail, Step
    from sales.models import CustomerAccount, CustomerReplica

    actions.mode_switch(mode=mode)
    registration = gateway.client_register(**ADA, initiator=gateway.SYSTEM)
    flows.wait_for_status(registration.id)
    client_id = registration.client_id

    erasure = gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)
    flows.wait_for_status(erasure.id)

    with pytest.raises(NotFound):
        gateway.client_details(client_id=client_id)
    with pytest.raises(NotFound):
        gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)
    assert (Client.objects.count(), Communication.objects.count()) == (0, 0)
    assert (CustomerAccount.objects.count(), CustomerReplica.objects.count()) == (0, 0)
    assert AudienceMember.objects.count() == 0
    assert set(Message.objects.values_list("recipient", "subject", "body")) == {
        ("erased@invalid", "", "")
    }
    assert not RegisteredEmail.objects.exists()
    assert Process.objects.get(pk=registration.id).input == {}
    assert not Step.objects.filter(process=registration).exclude(result={}).exists()
    again = gateway.client_register(**ADA, initiator=gateway.SYSTEM)
    flows.wait_for_status(again.id)
    assert Client.objects.get().id == again.client_id != client_id
