"""Listener switches: states and backlogs, switching one listener or a component (audited), and
`manage.py listeners`."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from common.errors import NotFound, ValidationFailed
from integration import actions, bus
from integration.choreography import switches
from integration.events import ClientCreated
from integration.models import AuditEntry, Delivery, ListenerSwitch

pytestmark = pytest.mark.django_db

EVERY_LISTENER = [
    "correspondence.erase_client",
    "correspondence.remember_recipient",
    "correspondence.send_receipt",
    "correspondence.send_welcome_email",
    "correspondence.update_recipient",
    "crm.add_purchase_value",
    "crm.create_client",
    "crm.erase_client",
    "crm.record_receipt",
    "crm.record_welcome_email",
    "crm.update_client",
    "integration.scrub_client",
    "marketing.erase_client",
    "marketing.join_audience",
    "marketing.sync_audience",
    "sales.erase_client",
    "sales.record_purchase",
    "sales.replicate_client",
    "sales.replicate_client_update",
    "sales.replicate_communication",
]
SALES = [name for name in EVERY_LISTENER if name.startswith("sales.")]


def client_created() -> ClientCreated:
    return ClientCreated(
        client_id=str(uuid.uuid4()),
        client_version=1,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="",
        company="",
        marketing_consent=True,
        registered_at="2026-01-01T00:00:00+00:00",
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("listeners", *args, stdout=out)
    return out.getvalue()


# --- states ---------------------------------------------------------------------------------------


def test_every_registered_listener_is_listed_enabled_with_no_backlog() -> None:
    assert switches.listener_states() == [(name, "enabled", 0) for name in EVERY_LISTENER]
    assert [entry.name for entry in sorted(bus.registry(), key=lambda e: e.name)] == EVERY_LISTENER


def test_the_backlog_counts_what_a_listener_has_not_settled() -> None:
    # given sales paused, two ClientCreated events, and one delivery of each kind settled
    actions.listener_set(name="sales", state="paused", by="test")
    bus.publish(client_created(), source="crm")
    bus.publish(client_created(), source="crm")
    Delivery.objects.filter(listener="marketing.join_audience").update(status="done")
    first = Delivery.objects.filter(listener="correspondence.remember_recipient").first()
    assert first is not None
    Delivery.objects.filter(pk=first.id).update(status="dead")

    states = {name: (state, backlog) for name, state, backlog in switches.listener_states()}

    assert states["sales.replicate_client"] == ("paused", 2)
    assert states["sales.record_purchase"] == ("paused", 0)
    assert states["correspondence.send_welcome_email"] == ("enabled", 2)
    assert states["correspondence.remember_recipient"] == ("enabled", 1)
    assert states["marketing.join_audience"] == ("enabled", 0)
    assert len(states) == len(EVERY_LISTENER)


# --- switching ------------------------------------------------------------------------------------


def test_a_component_is_switched_listener_by_listener_and_audited() -> None:
    switched = actions.listener_set(name="sales", state="paused", by="user:ops")

    assert switched == SALES
    assert list(ListenerSwitch.objects.values_list("listener", "state", "changed_by")) == [
        (name, "paused", "user:ops") for name in SALES
    ]
    audit = AuditEntry.objects.get()
    assert (audit.actor, audit.action, audit.target, audit.detail) == (
        "user:ops",
        "listeners.paused",
        "sales",
        {"listeners": SALES},
    )


def test_one_listener_is_switched_alone() -> None:
    switched = actions.listener_set(name="crm.create_client", state="disabled", by="ops")

    assert switched == ["crm.create_client"]
    states = dict((name, state) for name, state, _ in switches.listener_states())
    assert [name for name, state in states.items() if state != "enabled"] == ["crm.create_client"]
    assert states["crm.create_client"] == "disabled"
    assert list(AuditEntry.objects.values_list("action", "target")) == [
        ("listeners.disabled", "crm.create_client")
    ]


def test_resume_releases_the_backlog() -> None:
    actions.listener_set(name="sales.replicate_client", state="paused", by="test")
    bus.publish(client_created(), source="crm")
    held = Delivery.objects.get(listener="sales.replicate_client")
    assert held.status == "held"

    actions.listener_set(name="sales.replicate_client", state="enabled", by="test")

    held.refresh_from_db()
    assert (held.status, held.sends) == ("sent", 1)
    assert dict((n, (s, b)) for n, s, b in switches.listener_states())[
        "sales.replicate_client"
    ] == ("enabled", 1)


def test_disabling_a_paused_listener_skips_its_backlog() -> None:
    actions.listener_set(name="sales.replicate_client", state="paused", by="test")
    bus.publish(client_created(), source="crm")

    actions.listener_set(name="sales.replicate_client", state="disabled", by="test")

    assert list(
        Delivery.objects.filter(listener="sales.replicate_client").values_list("status", flat=True)
    ) == ["skipped"]
    assert dict((n, (s, b)) for n, s, b in switches.listener_states())[
        "sales.replicate_client"
    ] == ("disabled", 0)


def test_an_unknown_name_or_state_changes_nothing() -> None:
    with pytest.raises(NotFound) as raised:
        actions.listener_set(name="nobody", state="paused", by="ops")
    assert raised.value.detail == "no listener or component named 'nobody'"
    with pytest.raises(ValidationFailed):
        actions.listener_set(name="sales", state="asleep", by="ops")

    assert (ListenerSwitch.objects.count(), AuditEntry.objects.count()) == (0, 0)


# --- manage.py listeners --------------------------------------------------------------------------


def test_the_command_lists_each_listener_its_state_and_backlog() -> None:
    actions.listener_set(name="sales.replicate_client", state="paused", by="test")
    bus.publish(client_created(), source="crm")

    lines = run().splitlines()

    expected = {name: f"{name} enabled 0" for name in EVERY_LISTENER}
    expected["sales.replicate_client"] = "sales.replicate_client paused 1"
    for name in (
        "correspondence.remember_recipient",
        "correspondence.send_welcome_email",
        "marketing.join_audience",
    ):
        expected[name] = f"{name} enabled 1"
    assert lines == [expected[name] for name in EVERY_LISTENER]


@pytest.mark.parametrize(
    ("action", "state"),
    [("pause", "paused"), ("resume", "enabled"), ("disable", "disabled"), ("enable", "enabled")],
)
def test_the_command_switches_a_component(action: str, state: str) -> None:
    output = run(action, "sales")

    assert output.splitlines() == [f"{name} {state}" for name in SALES]
    assert set(ListenerSwitch.objects.values_list("state", "changed_by")) == {(state, "manage.py")}
    assert AuditEntry.objects.get().actor == "manage.py"


def test_the_command_switches_one_listener() -> None:
    assert run("pause", "crm.create_client") == "crm.create_client paused\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pause",), "say which listener or component to pause"),
        (("disable", "nobody"), "no listener or component named 'nobody'"),
        (("stop", "sales"), "Error: argument action: invalid choice: 'stop' "),
    ],
)
def test_the_command_reports_errors_in_one_line(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        run(*args)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)
    assert ListenerSwitch.objects.count() == 0
