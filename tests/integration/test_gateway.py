"""The gateway: validation that writes nothing, identities handed out at the door, conflicts,
idempotent purchases, erasure, staff notes, and which processes a token may see."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from common.errors import Conflict, NotFound, ValidationFailed
from crm import services as crm_services
from crm.models import Communication
from integration import actions, gateway
from integration.models import (
    ErasedClientId,
    EventRecord,
    OrderKey,
    Process,
    RegisteredEmail,
    Step,
    TraceEntry,
)
from shop_api.auth import token_issue
from tests.crm.factories import ClientFactory
from tests.integration.conftest import Broker
from tests.integration.helpers import ADA, register, trace_of

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]

MISSING = object()
ORDER = {"order_ref": "SHOP-10023", "total": "59.90", "currency": "eur"}


def rows() -> tuple[int, ...]:
    return (
        Process.objects.count(),
        RegisteredEmail.objects.count(),
        OrderKey.objects.count(),
        Step.objects.count(),
        TraceEntry.objects.count(),
        EventRecord.objects.count(),
    )


def refused(call: Any, **kwargs: Any) -> ValidationFailed:
    before = rows()
    with pytest.raises(ValidationFailed) as raised:
        call(**kwargs)
    assert rows() == before, "a refused request wrote rows"
    return raised.value


# --- registration ---------------------------------------------------------------------------------


def test_a_registration_hands_out_the_client_id_and_starts_in_the_current_mode() -> None:
    # when a client registers with an untidy email (the faces check the fields' shape)
    process = register(email="  Ada@Example.COM ", phone="")

    # then the process holds the input with the email normalised, as the registry does
    assert (process.kind, process.mode, process.status) == (
        "client_registration",
        "orchestration",
        "running",
    )
    assert process.input == {
        "email": "Ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "",
        "company": "Analytical Engines",
        "marketing_consent": False,
    }
    assert list(RegisteredEmail.objects.values_list("email", "client_id", "process_id")) == [
        ("Ada@example.com", process.client_id, process.id)
    ]
    assert trace_of(process.id) == [
        ("integration", "client_registration", "action", "started", 1),
        ("integration", "create_client", "command", "sent", 1),
    ]


def test_a_registration_in_choreography_publishes_client_registered(choreography: None) -> None:
    process = register(marketing_consent=True)

    assert process.mode == "choreography"
    record = EventRecord.objects.get()
    assert (record.name, record.source, record.process_id, record.client_id) == (
        "ClientRegistered",
        "integration",
        process.id,
        process.client_id,
    )
    assert record.payload == {
        "client_id": str(process.client_id),
        "schema_version": 1,
        "email": "Ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "company": "Analytical Engines",
        "marketing_consent": True,
    }


def test_the_initiator_is_kept_on_the_process() -> None:
    issued = token_issue(name="shop")
    user = get_user_model().objects.create_user(username="marketer")

    by_shop = gateway.client_register(**ADA, initiator=gateway.Initiator(token=issued.token))
    by_staff = gateway.client_register(
        **{**ADA, "email": "grace@example.com"}, initiator=gateway.Initiator(user=user)
    )

    assert (by_shop.initiator_token_id, by_shop.initiator_user_id) == (issued.token.id, None)
    assert (by_staff.initiator_token_id, by_staff.initiator_user_id) == (None, user.id)
    assert gateway.Initiator(token=issued.token).label == "token:shop"
    assert gateway.Initiator(user=user).label == "user:marketer"
    assert gateway.SYSTEM.label == "system"


def test_an_email_in_flight_is_taken_with_its_client_id() -> None:
    # given a registration still in flight
    first = register()

    # when the same address registers again, spelt differently
    with pytest.raises(Conflict) as raised:
        register(email=" Ada@EXAMPLE.com", first_name="Other")

    # then 409 names the client it belongs to, and nothing more is written
    assert raised.value.status == 409
    assert raised.value.errors == {"email": ["Already registered."]}
    assert raised.value.extra == {"client_id": str(first.client_id)}
    assert (Process.objects.count(), RegisteredEmail.objects.count()) == (1, 1)


def test_an_email_crm_holds_is_taken_with_its_client_id() -> None:
    # given a client crm holds that the gateway never registered (created before the registry)
    client = ClientFactory.create(email="Ada@example.com")

    with pytest.raises(Conflict) as raised:
        register()

    assert raised.value.extra == {"client_id": str(client.id)}
    assert rows() == (0, 0, 0, 0, 0, 0)


def test_the_local_part_of_an_email_keeps_its_case() -> None:
    register(email="ada@example.com")

    other = register(email="ADA@example.com")

    assert other.input["email"] == "ADA@example.com"
    assert RegisteredEmail.objects.count() == 2


# --- purchases ------------------------------------------------------------------------------------


def test_a_purchase_starts_once_per_order_ref() -> None:
    # given a registered client
    client_id = register().client_id

    # when the shop posts the same order twice (the second time with another total)
    process, created = gateway.purchase_record(
        client_id=client_id, **ORDER, initiator=gateway.SYSTEM
    )
    again, created_again = gateway.purchase_record(
        client_id=client_id,
        **{**ORDER, "total": "1.00"},
        initiator=gateway.SYSTEM,
    )

    # then the original process answers both times
    assert (created, created_again, again.id) == (True, False, process.id)
    assert process.input == {
        "order_ref": "SHOP-10023",
        "total": "59.90",
        "currency": "EUR",
        "purchased_at": None,
    }
    assert Process.objects.filter(kind="purchase").count() == 1
    assert list(OrderKey.objects.values_list("client_id", "order_ref", "process_id")) == [
        (client_id, "SHOP-10023", process.id)
    ]


def test_the_same_order_ref_for_another_client_is_another_purchase() -> None:
    first = register().client_id
    second = register(email="grace@example.com").client_id

    one, _ = gateway.purchase_record(client_id=first, **ORDER, initiator=gateway.SYSTEM)
    two, created = gateway.purchase_record(client_id=second, **ORDER, initiator=gateway.SYSTEM)

    assert created is True and one.id != two.id


def test_a_purchase_that_loses_the_race_for_its_order_ref_returns_the_winner(
    monkeypatch: pytest.MonkeyPatch, broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given another request records the same order between our check and our insert
    client_id = register().client_id
    winner = Process.objects.create(kind="purchase", mode="orchestration", client_id=client_id)
    real_start = gateway._start

    def start_then_lose_the_race(**kwargs: Any) -> Process:
        process = real_start(**kwargs)
        OrderKey.objects.create(client_id=client_id, order_ref="SHOP-10023", process=winner)
        return process

    monkeypatch.setattr(gateway, "_start", start_then_lose_the_race)

    # when our request inserts its order key
    with django_capture_on_commit_callbacks(execute=True):
        process, created = gateway.purchase_record(
            client_id=client_id, **ORDER, initiator=gateway.SYSTEM
        )

    # then it answers with the winner's process; its own process and command are gone unsent
    assert (process.id, created) == (winner.id, False)
    assert list(Process.objects.filter(kind="purchase").values_list("id", flat=True)) == [winner.id]
    assert Step.objects.filter(process__kind="purchase").count() == 0
    assert broker.sent == []


def test_a_purchase_keeps_an_aware_timestamp_and_whole_amounts() -> None:
    client_id = register().client_id
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    process, _ = gateway.purchase_record(
        client_id=client_id,
        **{**ORDER, "total": 12, "purchased_at": at},
        initiator=gateway.SYSTEM,
    )

    assert process.input["total"] == "12.00"
    assert process.input["purchased_at"] == "2026-01-02T03:04:05+00:00"


def test_a_purchase_for_an_unknown_client_is_not_found() -> None:
    with pytest.raises(NotFound) as raised:
        gateway.purchase_record(client_id=uuid.uuid4(), **ORDER, initiator=gateway.SYSTEM)

    assert raised.value.detail == "No client with this id."
    assert rows() == (0, 0, 0, 0, 0, 0)


# --- updates --------------------------------------------------------------------------------------


def test_an_update_starts_with_the_clean_changes_and_moves_the_registry() -> None:
    client_id = register().client_id

    process = gateway.client_update(
        client_id=client_id,
        **{"email": " ada@NEW.example ", "marketing_consent": True},
        initiator=gateway.SYSTEM,
    )

    assert (process.kind, process.client_id) == ("client_update", client_id)
    assert process.input == {"email": "ada@new.example", "marketing_consent": True}
    assert list(RegisteredEmail.objects.values_list("email", flat=True)) == ["ada@new.example"]


def test_an_update_to_its_own_email_is_allowed() -> None:
    client_id = register().client_id

    process = gateway.client_update(
        client_id=client_id, **{"email": "Ada@example.com"}, initiator=gateway.SYSTEM
    )

    assert process.input == {"email": "Ada@example.com"}


def test_an_update_to_a_taken_email_is_a_conflict() -> None:
    ada = register().client_id
    grace = register(email="grace@example.com").client_id

    with pytest.raises(Conflict) as raised:
        gateway.client_update(
            client_id=ada, **{"email": "grace@example.com"}, initiator=gateway.SYSTEM
        )

    assert raised.value.extra == {"client_id": str(grace)}
    assert sorted(RegisteredEmail.objects.values_list("email", flat=True)) == [
        "Ada@example.com",
        "grace@example.com",
    ]
    assert Process.objects.filter(kind="client_update").count() == 0


def test_an_update_for_an_unknown_client_is_not_found() -> None:
    with pytest.raises(NotFound):
        gateway.client_update(client_id=uuid.uuid4(), **{"phone": "1"}, initiator=gateway.SYSTEM)


# --- erasure --------------------------------------------------------------------------------------


def test_erasing_twice_is_not_found_the_second_time() -> None:
    client_id = register().client_id

    process = gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)
    with pytest.raises(NotFound):
        gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)

    assert (process.kind, process.client_id) == ("client_erasure", client_id)
    assert list(ErasedClientId.objects.values_list("client_id", flat=True)) == [client_id]
    assert Process.objects.filter(kind="client_erasure").count() == 1
    assert gateway.client_known(client_id) is False
    # and the erased client answers 404 everywhere
    with pytest.raises(NotFound):
        gateway.purchase_record(client_id=client_id, **ORDER, initiator=gateway.SYSTEM)
    with pytest.raises(NotFound):
        gateway.client_details(client_id=client_id)


# --- staff notes ----------------------------------------------------------------------------------


def known_client() -> uuid.UUID:
    client_id = register().client_id
    crm_services.client_create(
        client_id=client_id, email="Ada@example.com", first_name="Ada", last_name="Lovelace"
    )
    return client_id


def test_a_communication_is_recorded_by_crm_and_told_in_choreography() -> None:
    client_id = known_client()

    gateway.communication_add(
        client_id=client_id, channel="phone", subject=" Call ", body="b", initiator=gateway.SYSTEM
    )
    assert EventRecord.objects.count() == 0  # orchestration: nobody keeps a copy to tell
    actions.mode_switch(mode="choreography")
    gateway.communication_add(
        client_id=client_id, channel="note", subject="Note", body="", initiator=gateway.SYSTEM
    )

    assert sorted(Communication.objects.values_list("channel", "subject")) == [
        ("note", "Note"),
        ("phone", "Call"),
    ]
    record = EventRecord.objects.get()
    assert (record.name, record.source, record.client_id, record.process_id) == (
        "CommunicationRecorded",
        "crm",
        client_id,
        None,
    )


def test_a_communication_for_an_unknown_client_is_not_found() -> None:
    with pytest.raises(NotFound):
        gateway.communication_add(
            client_id=uuid.uuid4(), channel="note", subject="s", body="", initiator=gateway.SYSTEM
        )


# --- reading processes ----------------------------------------------------------------------------


def test_a_token_sees_only_the_processes_it_started() -> None:
    mine, theirs = token_issue(name="shop").token, token_issue(name="other").token
    process = gateway.client_register(**ADA, initiator=gateway.Initiator(token=mine))

    assert gateway.process_get(process_id=process.id, token=mine).id == process.id
    assert gateway.process_get(process_id=process.id).id == process.id  # staff see every one
    with pytest.raises(NotFound) as raised:
        gateway.process_get(process_id=process.id, token=theirs)
    assert raised.value.detail == "No process with this id."
    with pytest.raises(NotFound):
        gateway.process_get(process_id=uuid.uuid4())


def test_a_process_comes_with_its_trace_in_order() -> None:
    process = register()

    found = gateway.process_get(process_id=process.id)

    assert [(e.seq, e.name) for e in found.trace.all()] == [
        (1, "client_registration"),
        (2, "create_client"),
    ]


# --- finding a client -----------------------------------------------------------------------------


def test_a_client_is_found_by_email_only_when_known_and_not_erased() -> None:
    client_id = known_client()

    found = gateway.client_find_by_email(email=" Ada@EXAMPLE.com ")
    gateway.client_erase(client_id=client_id, initiator=gateway.SYSTEM)

    assert found == [
        {"id": client_id, "email": "Ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
    ]
    assert gateway.client_find_by_email(email="Ada@example.com") == []
    assert gateway.client_find_by_email(email="nobody@example.com") == []
