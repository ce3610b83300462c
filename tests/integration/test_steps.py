"""What each orchestrated step does in its component: one service call, and the ids (and the few
values later steps need) handed on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from common.errors import NotFound
from correspondence.models import Message
from crm.models import Client, Communication, ErasedClient
from integration.models import ErasedClientId, EventRecord, Process, RegisteredEmail, Step
from integration.orchestrator import steps
from integration.orchestrator.definitions import StepContext, all_definitions, definition_for
from marketing.models import AudienceMember
from sales.models import CustomerAccount, Purchase
from tests.crm.factories import ClientFactory, CommunicationFactory
from tests.integration.helpers import register
from tests.marketing.factories import AudienceMemberFactory
from tests.sales.factories import PurchaseFactory

pytestmark = pytest.mark.django_db

PROFILE: dict[str, Any] = {
    "email": "Ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "",
    "company": "",
    "marketing_consent": True,
}


def context(
    client_id: uuid.UUID | None = None,
    results: dict[str, dict[str, Any]] | None = None,
    /,
    **data: Any,
) -> StepContext:
    return StepContext(
        process_id=uuid.UUID(int=7),
        client_id=client_id or uuid.uuid4(),
        input=data,
        results=results or {},
    )


def delivered(queued: dict[str, Any]) -> dict[str, Any]:
    """A sending step's work after commit, as the engine runs it: the result it settles with."""
    settled: list[tuple[str, dict[str, Any]]] = []
    steps.deliver_email(queued, lambda status, result: settled.append((status, result)))
    [(status, result)] = settled
    assert status == result["status"]
    return result


def test_the_definitions_name_each_step_and_its_component() -> None:
    assert {d.kind: [(s.name, s.component) for s in d.steps] for d in all_definitions()} == {
        "client_registration": [
            ("create_client", "crm"),
            ("open_account", "sales"),
            ("send_welcome_email", "correspondence"),
            ("record_welcome_email", "crm"),
            ("add_to_audience", "marketing"),
        ],
        "purchase": [
            ("record_purchase", "sales"),
            ("add_client_value", "crm"),
            ("send_receipt", "correspondence"),
            ("record_receipt", "crm"),
        ],
        "client_update": [("update_client", "crm"), ("sync_audience", "marketing")],
        "client_erasure": [
            ("erase_crm", "crm"),
            ("erase_sales", "sales"),
            ("erase_marketing", "marketing"),
            ("erase_correspondence", "correspondence"),
            ("erase_traces", "integration"),
        ],
    }


@pytest.mark.parametrize(
    ("changes", "applies"),
    [
        ({"phone": "1"}, False),
        ({"email": "a@b.co"}, True),
        ({"marketing_consent": False}, True),
    ],
)
def test_the_audience_is_synced_only_when_consent_or_email_changes(
    changes: dict[str, Any], applies: bool
) -> None:
    definition = definition_for("client_update")

    following = definition.next_step(1, context(**changes))

    assert (following[1].name if following else None) == ("sync_audience" if applies else None)


@pytest.mark.parametrize(
    ("kind", "sending", "status", "following"),
    [
        ("client_registration", "send_welcome_email", "sent", "record_welcome_email"),
        ("client_registration", "send_welcome_email", "cancelled", "add_to_audience"),
        ("purchase", "send_receipt", "sent", "record_receipt"),
        ("purchase", "send_receipt", "cancelled", None),
    ],
)
def test_an_email_is_recorded_only_when_it_was_sent(
    kind: str, sending: str, status: str, following: str | None
) -> None:
    definition = definition_for(kind)
    position = [s.name for s in definition.steps].index(sending) + 1
    results = {sending: {"status": status}}

    after = definition.next_step(position, context(None, results, marketing_consent=True))

    assert (after[1].name if after else None) == following
    assert definition.step(sending).after_commit is not None


# --- registration ---------------------------------------------------------------------------------


def test_registration_commands_create_open_send_and_record() -> None:
    client_id = uuid.uuid4()
    results: dict[str, dict[str, Any]] = {}

    results["create_client"] = steps.create_client(context(client_id, **PROFILE))
    results["open_account"] = steps.open_account(context(client_id))
    queued = steps.send_welcome_email(context(client_id, **PROFILE))
    # the message is recorded claimed for the send after commit, which need not claim it again
    assert (queued, len(mail.outbox)) == (
        {"message_id": str(Message.objects.get().id), "claimed": True},
        0,
    )
    results["send_welcome_email"] = delivered(queued)
    results["record_welcome_email"] = steps.record_welcome_email(
        context(client_id, results, **PROFILE)
    )
    results["add_to_audience"] = steps.add_to_audience(context(client_id, results, **PROFILE))

    client = Client.objects.get()
    message = Message.objects.get()
    communication = Communication.objects.get()
    # (recording the email is a change of the client: its version moved on)
    assert (client.id, client.email, client.version) == (client_id, "Ada@example.com", 2)
    assert list(CustomerAccount.objects.values_list("client_id", flat=True)) == [client_id]
    assert (message.template_key, message.reference, message.recipient) == (
        "welcome",
        str(uuid.UUID(int=7)),
        "Ada@example.com",
    )
    assert [m.subject for m in mail.outbox] == ["Welcome to Ensemble, Ada"]
    assert (communication.channel, communication.reference, communication.subject) == (
        "email",
        str(message.id),
        "Welcome to Ensemble, Ada",
    )
    assert list(AudienceMember.objects.values_list("client_id", "consent")) == [(client_id, True)]
    assert results == {
        "create_client": {"version": 1},
        "open_account": {},
        "send_welcome_email": {
            "status": "sent",
            "message_id": str(message.id),
            "subject": "Welcome to Ensemble, Ada",
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        },
        "record_welcome_email": {"communication_id": str(communication.id)},
        "add_to_audience": {"applied": True},
    }


def test_a_repeated_registration_command_has_one_effect() -> None:
    client_id = uuid.uuid4()

    for _ in range(2):
        steps.create_client(context(client_id, **PROFILE))
        delivered(steps.send_welcome_email(context(client_id, **PROFILE)))

    assert (Client.objects.count(), Message.objects.count(), len(mail.outbox)) == (1, 1, 1)


# --- purchase -------------------------------------------------------------------------------------


def test_purchase_commands_record_add_value_and_send_the_receipt_to_crms_address() -> None:
    client = ClientFactory.create(email="ada@new.example", first_name="Ada")
    order: dict[str, Any] = {
        "order_ref": "SHOP-1",
        "total": "59.90",
        "currency": "EUR",
        "purchased_at": "2026-01-02T03:04:05+00:00",
    }
    results: dict[str, dict[str, Any]] = {}

    results["record_purchase"] = steps.record_purchase(context(client.id, **order))
    results["add_client_value"] = steps.add_client_value(context(client.id, **order))
    results["send_receipt"] = delivered(steps.send_receipt(context(client.id, results, **order)))
    results["record_receipt"] = steps.record_receipt(context(client.id, results, **order))

    purchase = Purchase.objects.get()
    assert (purchase.order_ref, purchase.total, purchase.currency, purchase.purchased_at) == (
        "SHOP-1",
        Decimal("59.90"),
        "EUR",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert results["record_purchase"] == {"purchase_id": str(purchase.id), "created": True}
    assert results["add_client_value"] == {
        "email": "ada@new.example",
        "first_name": "Ada",
        "version": 2,
    }
    message = Message.objects.get()
    assert (message.template_key, message.recipient, message.subject) == (
        "receipt",
        "ada@new.example",
        "Your receipt for order SHOP-1",
    )
    assert "Total: 59.90 EUR" in message.body
    assert Communication.objects.get().reference == str(message.id)


def test_a_purchase_recorded_before_is_not_recorded_again() -> None:
    client_id = uuid.uuid4()
    order: dict[str, Any] = {"order_ref": "SHOP-1", "total": "1.00", "currency": "EUR"}
    steps.record_purchase(context(client_id, **order))

    again = steps.record_purchase(context(client_id, **{**order, "total": "2.00"}))

    assert again["created"] is False
    assert Purchase.objects.get().total == Decimal("1.00")


def test_adding_value_to_a_client_crm_does_not_know_is_not_found() -> None:
    with pytest.raises(NotFound):
        steps.add_client_value(context(total="1.00", currency="EUR"))


# --- update ---------------------------------------------------------------------------------------


def test_update_then_sync_audience_follows_the_consent() -> None:
    client = ClientFactory.create(email="ada@example.com", marketing_consent=False)

    joined = steps.update_client(context(client.id, marketing_consent=True))
    sync_in = steps.sync_audience(context(client.id, {"update_client": joined}))
    left = steps.update_client(context(client.id, marketing_consent=False))
    sync_out = steps.sync_audience(context(client.id, {"update_client": left}))

    assert joined == {"version": 2, "email": "ada@example.com", "marketing_consent": True}
    assert (sync_in, sync_out) == (
        {"in_audience": True, "applied": True},
        {"in_audience": False, "applied": True},
    )
    member = AudienceMember.objects.get()
    assert (member.consent, member.left_at is not None) == (False, True)


# --- erasure --------------------------------------------------------------------------------------


def test_erasure_commands_forget_the_client_everywhere() -> None:
    # given a client known everywhere, with a registration the gateway traced
    process = register()
    client_id = process.client_id
    CommunicationFactory.create(client=ClientFactory.create(id=client_id, email="Ada@example.com"))
    PurchaseFactory.create(client_id=client_id)
    CustomerAccount.objects.create(client_id=client_id)
    AudienceMemberFactory.create(client_id=client_id)
    steps.send_welcome_email(context(client_id, email="Ada@example.com", first_name="Ada"))
    Step.objects.filter(process=process).update(result={"email": "Ada@example.com"})
    EventRecord.objects.create(
        name="ClientCreated",
        source="crm",
        client_id=client_id,
        payload={"email": "Ada@example.com"},
    )

    # when each erasure step runs
    for name in ("erase_crm", "erase_sales", "erase_marketing", "erase_correspondence"):
        assert getattr(steps, name)(context(client_id)) == {}
    scrubbed = steps.erase_traces(context(client_id))

    # then nothing personal is left, and the tombstones stay
    assert (Client.objects.count(), Communication.objects.count()) == (0, 0)
    assert list(ErasedClient.objects.values_list("client_id", flat=True)) == [client_id]
    assert (Purchase.objects.count(), CustomerAccount.objects.count()) == (0, 0)
    assert AudienceMember.objects.count() == 0
    assert "Ada@example.com" not in str(list(Message.objects.values()))
    assert scrubbed == {
        "processes": 1,
        "registry": 1,
        "events": 1,
        "idempotency_records": 0,
    }
    assert Process.objects.get().input == {}
    assert list(Step.objects.values_list("result", flat=True)) == [{}]
    assert RegisteredEmail.objects.count() == 0
    assert EventRecord.objects.get().payload == {}
    assert list(ErasedClientId.objects.values_list("client_id", flat=True)) == [client_id]


def test_two_updates_reaching_marketing_out_of_order_leave_the_newer_consent() -> None:
    # given a consenting client changed twice: consent withdrawn (v3) after an email change (v2)
    client = ClientFactory.create(marketing_consent=True)
    first = steps.update_client(context(client.id, email="ada@first.example"))
    second = steps.update_client(context(client.id, marketing_consent=False))

    # when the newer process reaches marketing before the older one
    steps.sync_audience(context(client.id, {"update_client": second}))
    stale = steps.sync_audience(context(client.id, {"update_client": first}))

    # then the older change is ignored: the client stays out of the audience
    assert stale == {"in_audience": True, "applied": False}
    member = AudienceMember.objects.get()
    assert (member.consent, member.client_version) == (False, second["version"])
