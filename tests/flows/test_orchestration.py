"""Orchestrated processes with real workers: exact traces, retries, failures, lost messages."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from correspondence.models import Message
from crm.models import Client, Communication
from integration import actions, gateway
from integration.models import ProcessedMessage, Step, StepStatus
from integration.orchestrator import engine
from marketing.models import AudienceMember
from sales.models import CustomerAccount, Purchase
from tests.support import flows

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ADA = {
    "email": "Ada@Example.COM",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+44 20 7946 0000",
    "company": "Analytical Engines",
    "marketing_consent": True,
}


def sent(name: str, attempt: int = 1) -> tuple[Any, ...]:
    return ("integration", name, "command", "sent", attempt)


def done(component: str, name: str, attempt: int = 1) -> tuple[Any, ...]:
    return (component, name, "step", "done", attempt)


REGISTRATION_TRACE = [
    ("integration", "client_registration", "action", "started", 1),
    sent("create_client"),
    done("crm", "create_client"),
    sent("open_account"),
    done("sales", "open_account"),
    sent("send_welcome_email"),
    ("correspondence", "send_email", "step", "sent", 1),
    done("correspondence", "send_welcome_email"),
    sent("record_welcome_email"),
    done("crm", "record_welcome_email"),
    sent("add_to_audience"),
    done("marketing", "add_to_audience"),
    ("integration", "client_registration", "action", "completed", 1),
]


@pytest.fixture(autouse=True)
def orchestration_mode() -> None:
    actions.mode_switch(mode="orchestration")


def register(**overrides: Any) -> Any:
    return gateway.client_register(**{**ADA, **overrides}, initiator=gateway.SYSTEM)


def test_registration_completes_with_exactly_the_trace_expected(all_workers: Any) -> None:
    # When a client registers
    process = register()
    finished = flows.wait_for_status(process.id)

    # Then every step ran once, in order, and every component holds its part
    assert finished.mode == "orchestration"
    assert finished.finished_at is not None
    assert flows.trace_of(process.id) == REGISTRATION_TRACE
    client = Client.objects.get()
    assert (client.id, client.email, client.first_name) == (
        process.client_id,
        "Ada@example.com",
        "Ada",
    )
    assert CustomerAccount.objects.filter(client_id=client.id).count() == 1
    message = Message.objects.get()
    assert (message.template_key, message.status, message.recipient) == (
        "welcome",
        "sent",
        "Ada@example.com",
    )
    communication = Communication.objects.get()
    assert (communication.channel, communication.reference) == ("email", str(message.id))
    assert list(AudienceMember.objects.values_list("client_id", "consent")) == [(client.id, True)]
    assert Step.objects.filter(process=process, status=StepStatus.DONE).count() == 5


def test_registration_without_consent_skips_the_audience(all_workers: Any) -> None:
    process = register(marketing_consent=False)
    flows.wait_for_status(process.id)

    assert flows.trace_of(process.id) == [*REGISTRATION_TRACE[:10], REGISTRATION_TRACE[-1]]
    assert AudienceMember.objects.count() == 0


def test_purchase_completes_and_repeating_its_order_ref_returns_the_original(
    all_workers: Any,
) -> None:
    registration = register()
    flows.wait_for_status(registration.id)
    order = {"order_ref": "SHOP-1", "total": "59.90", "currency": "EUR"}

    process, created = gateway.purchase_record(
        client_id=registration.client_id, **order, initiator=gateway.SYSTEM
    )
    flows.wait_for_status(process.id)
    again, created_again = gateway.purchase_record(
        client_id=registration.client_id, **order, initiator=gateway.SYSTEM
    )

    assert (created, created_again, again.id) == (True, False, process.id)
    assert flows.trace_of(process.id) == [
        ("integration", "purchase", "action", "started", 1),
        sent("record_purchase"),
        done("sales", "record_purchase"),
        sent("add_client_value"),
        done("crm", "add_client_value"),
        sent("send_receipt"),
        ("correspondence", "send_email", "step", "sent", 1),
        done("correspondence", "send_receipt"),
        sent("record_receipt"),
        done("crm", "record_receipt"),
        ("integration", "purchase", "action", "completed", 1),
    ]
    purchase = Purchase.objects.get()
    assert (purchase.order_ref, purchase.total, purchase.currency) == (
        "SHOP-1",
        Decimal("59.90"),
        "EUR",
    )
    client = Client.objects.get()
    assert (client.lifetime_values, client.purchase_count) == ({"EUR": "59.90"}, 1)
    assert sorted(Message.objects.values_list("template_key", flat=True)) == ["receipt", "welcome"]
    assert Communication.objects.count() == 2


@pytest.mark.broker
def test_details_ask_crm_and_sales_and_compose_one_answer(all_workers: Any) -> None:
    registration = register()
    flows.wait_for_status(registration.id)

    details = gateway.client_details(client_id=registration.client_id)

    assert details["email"] == "Ada@example.com"
    assert (details["first_name"], details["company"]) == ("Ada", "Analytical Engines")
    assert [c["subject"] for c in details["communications"]] == ["Welcome to Ensemble, Ada"]
    assert details["purchases"] == []
    assert details["served_by"]["mode"] == "orchestration"
    assert details["served_by"]["source"] == "orchestrator"
    assert details["served_by"]["unavailable"] == []


@pytest.mark.broker
def test_a_command_never_published_is_sent_by_the_sweeper_once(
    all_workers: Any, fast_retries: dict[str, str], scheduler: Any, monkeypatch: Any
) -> None:
    # Given the web process dies between committing the command and publishing it
    monkeypatch.setattr(engine.relay, "send_after_commit", lambda message: None)
    process = register()
    monkeypatch.undo()

    # Then the sweeper sends it when its answer is overdue, and everything happens once
    flows.wait_for_status(process.id, timeout=30)
    trace = flows.trace_of(process.id)
    assert trace[:4] == [
        ("integration", "client_registration", "action", "started", 1),
        sent("create_client", 1),
        ("integration", "create_client", "retry", "timed_out", 1),
        sent("create_client", 2),
    ]
    assert Client.objects.count() == 1


@pytest.mark.broker
def test_a_command_published_twice_takes_effect_once(all_workers: Any) -> None:
    # Given a crash after publishing a command but before it was marked sent: it goes out again
    process = register(marketing_consent=False)
    step = Step.objects.get(process=process, position=1)
    for _ in range(3):
        engine.relay.send_now(engine._outgoing(step))

    flows.wait_for_status(process.id)

    assert flows.trace_of(process.id) == [*REGISTRATION_TRACE[:10], REGISTRATION_TRACE[-1]]
    assert Client.objects.count() == 1
    assert ProcessedMessage.objects.filter(message_id=step.id).count() == 1


@pytest.mark.broker
def test_broker_down_when_the_shop_posts_still_answers_and_completes_later(
    all_workers: Any, fast_retries: dict[str, str], scheduler: Any, monkeypatch: Any
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    # Given the broker refuses every message from this (web) process
    monkeypatch.setattr(engine.relay.app, "send_task", broker_down)
    started = time.monotonic()
    process = register()
    answered_in = time.monotonic() - started

    # Then the start was answered at once, the command waits for the sweeper
    step = Step.objects.get(process=process)
    assert answered_in < 1.5
    assert step.status == StepStatus.PENDING
    monkeypatch.undo()
    engine.relay._broker_down_until = 0.0
    # and the process completes once the broker takes messages again
    flows.wait_for_status(process.id, timeout=30)
    assert Client.objects.count() == 1
