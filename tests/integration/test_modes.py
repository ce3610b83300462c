"""The runtime mode: read, switched (validated, audited, replicas filled first), taken from the
environment, and `manage.py integration_mode`."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from common.errors import ValidationFailed
from crm.models import Client
from integration import actions
from integration.core import modes
from integration.models import AuditEntry, RuntimeMode
from marketing.models import AudienceMember
from sales.models import CustomerReplica
from tests.crm.factories import ClientFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("integration_mode", *args, stdout=out)
    return out.getvalue()


def test_the_default_mode_is_orchestration() -> None:
    assert RuntimeMode.objects.count() == 0
    assert modes.mode_get() == "orchestration"


def test_a_switch_is_stored_and_audited_once() -> None:
    # when the mode is switched, then set again to the same
    assert actions.mode_switch(mode="choreography", changed_by="user:ops") == "choreography"
    assert actions.mode_switch(mode="choreography", changed_by="user:other") == "choreography"

    # then one row holds it, and one audit entry says who switched it from what
    assert modes.mode_get() == "choreography"
    assert list(RuntimeMode.objects.values_list("mode", "changed_by")) == [
        ("choreography", "user:other")
    ]
    assert list(
        AuditEntry.objects.filter(action="mode.switch").values_list("actor", "target", "detail")
    ) == [("user:ops", "choreography", {"from": "orchestration"})]


def test_an_unknown_mode_is_refused_and_nothing_changes() -> None:
    with pytest.raises(ValidationFailed) as raised:
        actions.mode_switch(mode="anarchy")

    assert raised.value.detail == "unknown mode 'anarchy'"
    assert raised.value.errors == {"mode": ["Choose orchestration or choreography."]}
    assert (RuntimeMode.objects.count(), AuditEntry.objects.count()) == (0, 0)


def test_switching_to_choreography_fills_the_replicas_first() -> None:
    # given a consenting client crm knows, and no replica of it
    client = ClientFactory.create(marketing_consent=True, version=3)

    # when the mode switches to choreography
    actions.mode_switch(mode="choreography", changed_by="user:ops")

    # then sales and marketing hold it at crm's version, and the fill was audited before the switch
    replica = CustomerReplica.objects.get()
    assert (replica.client_id, replica.email, replica.client_version) == (
        client.id,
        client.email,
        3,
    )
    assert list(AudienceMember.objects.values_list("client_id", "client_version")) == [
        (client.id, 3)
    ]
    assert list(AuditEntry.objects.order_by("at", "id").values_list("action", "actor")) == [
        ("replicas.fill", "user:ops"),
        ("mode.switch", "user:ops"),
    ]


def test_switching_back_to_orchestration_fills_nothing() -> None:
    actions.mode_switch(mode="choreography")
    ClientFactory.create()

    actions.mode_switch(mode="orchestration")

    assert CustomerReplica.objects.count() == 0
    assert Client.objects.count() == 1
    assert list(AuditEntry.objects.values_list("action", flat=True)).count("replicas.fill") == 1


def test_integration_mode_from_the_environment_is_stored(settings: Any) -> None:
    settings.INTEGRATION_MODE = "choreography"

    assert actions.mode_apply_environment() == "choreography"

    assert list(RuntimeMode.objects.values_list("mode", "changed_by")) == [
        ("choreography", "INTEGRATION_MODE")
    ]


def test_without_integration_mode_the_stored_mode_stays(settings: Any) -> None:
    actions.mode_switch(mode="choreography")
    settings.INTEGRATION_MODE = None

    assert actions.mode_apply_environment() == "choreography"
    assert modes.mode_get() == "choreography"


# --- manage.py integration_mode -------------------------------------------------------------------


def test_the_command_prints_the_mode_alone_on_one_line() -> None:
    assert run() == "orchestration\n"


def test_the_command_switches_the_mode() -> None:
    assert run("choreography") == "choreography\n"

    assert modes.mode_get() == "choreography"
    assert AuditEntry.objects.get(action="mode.switch").actor == "manage.py"
    assert run() == "choreography\n"


def test_the_command_applies_the_environment(settings: Any) -> None:
    settings.INTEGRATION_MODE = "choreography"

    assert run("--from-environment") == "choreography\n"
    assert modes.mode_get() == "choreography"


def test_the_command_refuses_an_unknown_mode_in_one_line() -> None:
    with pytest.raises(CommandError) as raised:
        run("anarchy")

    assert str(raised.value).startswith("Error: argument mode: invalid choice: 'anarchy'")
    assert "\n" not in str(raised.value)
    assert RuntimeMode.objects.count() == 0
