"""Read your own writes (shop-api.md): processes carry crm's client version once they changed
the client there, and details answer at a version asked for — from the replica when it has caught
up, otherwise from crm, otherwise 503."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from common.errors import NotFound, Unavailable
from crm.models import Client
from integration import bus, gateway
from integration.models import Process, Step
from integration.orchestrator import engine, lookups
from sales.models import CustomerReplica
from tests.integration.helpers import deliver_all, register

pytestmark = pytest.mark.django_db


def run_step(process: Process, name: str) -> None:
    step = Step.objects.get(process=process, name=name, status__in=engine.ACTIVE)
    assert engine.step_execute(step_id=step.id) == "done"


def version_of(process: Process) -> int | None:
    return Process.objects.values_list("client_version", flat=True).get(pk=process.id)


def crm_answers(
    monkeypatch: pytest.MonkeyPatch, *, version: int | None, found: bool = True
) -> None:
    """crm's lookup queue answers at `version` (None: crm does not answer in time)."""

    def ask(components: list[str], client_id: UUID) -> tuple[dict[str, Any], list[str]]:
        answers: dict[str, Any] = {}
        if "sales" in components:
            answers["sales"] = {"found": True, "purchases": []}
        if version is not None:
            profile = {"id": str(client_id), "version": version, "email": "ada@example.com"}
            profile |= {"first_name": f"Ada v{version}", "last_name": "Lovelace", "phone": ""}
            profile |= {"company": "", "marketing_consent": False}
            profile |= {"registered_at": "2026-01-01T00:00:00+00:00"}
            crm = {"found": found, "profile": profile, "communications": []}
            answers["crm"] = crm if found else {"found": False}
        unavailable = [] if version is not None else ["crm"]
        return answers, unavailable

    monkeypatch.setattr(lookups, "ask", ask)


# --- the version a process leaves ---------------------------------------------------------------


def test_an_orchestrated_registration_carries_crms_version_once_crm_created_the_client() -> None:
    process = register()
    assert version_of(process) is None

    run_step(process, "create_client")

    assert version_of(process) == 1


def test_an_orchestrated_update_carries_the_version_it_made() -> None:
    registration = register()
    run_step(registration, "create_client")
    update = gateway.client_update(
        client_id=registration.client_id, initiator=gateway.SYSTEM, phone="+1 555 0100"
    )

    run_step(update, "update_client")

    assert version_of(update) == 2
    assert Client.objects.get(pk=registration.client_id).version == 2


def test_a_choreographed_registration_and_update_carry_crms_versions(choreography: None) -> None:
    registration = register()
    deliver_all()
    update = gateway.client_update(
        client_id=registration.client_id, initiator=gateway.SYSTEM, company="Difference Engines"
    )
    deliver_all()

    # (recording the welcome email moved crm's version on in between)
    current = Client.objects.get(pk=registration.client_id).version
    assert (version_of(registration), version_of(update)) == (1, current)
    assert current > 1


def test_a_purchase_does_not_carry_a_client_version(choreography: None) -> None:
    registration = register()
    deliver_all()
    purchase, _ = gateway.purchase_record(
        client_id=registration.client_id,
        order_ref="SHOP-1",
        total="9.90",
        currency="EUR",
        initiator=gateway.SYSTEM,
    )
    deliver_all()

    assert Process.objects.get(pk=purchase.id).status == "completed"
    assert version_of(purchase) is None


# --- details at a version -----------------------------------------------------------------------


def test_a_replica_that_has_caught_up_answers(choreography: None) -> None:
    process = register()
    deliver_all()

    details = gateway.client_details(client_id=process.client_id, min_version=1)

    assert (details["served_by"]["source"], details["served_by"]["version"]) == (
        "sales-replica",
        1,
    )


def test_a_replica_behind_the_version_asked_for_hands_over_to_crm(
    choreography: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = register()
    deliver_all()
    crm_answers(monkeypatch, version=2)

    details = gateway.client_details(client_id=process.client_id, min_version=2)

    assert details["first_name"] == "Ada v2"
    assert {key: details["served_by"][key] for key in ("mode", "source", "version")} == {
        "mode": "choreography",
        "source": "crm",
        "version": 2,
    }


def test_a_client_crm_knows_but_the_replica_has_not_received_is_answered_by_crm(
    choreography: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = register()  # nothing delivered: sales holds no copy yet
    crm_answers(monkeypatch, version=1)

    details = gateway.client_details(client_id=process.client_id)

    assert CustomerReplica.objects.count() == 0
    assert (details["served_by"]["source"], details["served_by"]["version"]) == ("crm", 1)


@pytest.mark.parametrize(
    ("crm_version", "found"),
    [(None, True), (1, True), (1, False)],
    ids=["crm silent", "crm behind", "crm has not got it"],
)
def test_no_component_at_the_version_is_503(
    choreography: None,
    monkeypatch: pytest.MonkeyPatch,
    crm_version: int | None,
    found: bool,
) -> None:
    process = register()
    deliver_all()
    crm_answers(monkeypatch, version=crm_version, found=found)

    with pytest.raises(Unavailable) as raised:
        gateway.client_details(client_id=process.client_id, min_version=2)

    assert (raised.value.status, raised.value.retry_after) == (503, 1)


def test_orchestrated_details_say_crms_version(monkeypatch: pytest.MonkeyPatch) -> None:
    process = register()
    crm_answers(monkeypatch, version=3)

    details = gateway.client_details(client_id=process.client_id, min_version=3)

    assert (details["served_by"]["source"], details["served_by"]["version"]) == (
        "orchestrator",
        3,
    )


def test_orchestrated_details_behind_the_version_or_without_crm_are_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = register()
    crm_answers(monkeypatch, version=1)
    with pytest.raises(Unavailable):
        gateway.client_details(client_id=process.client_id, min_version=2)

    crm_answers(monkeypatch, version=None)
    with pytest.raises(Unavailable):
        gateway.client_details(client_id=process.client_id, min_version=1)


def test_without_a_version_crms_silence_leaves_the_version_null(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = register()
    crm_answers(monkeypatch, version=None)

    details = gateway.client_details(client_id=process.client_id)

    assert (details["served_by"]["version"], details["served_by"]["unavailable"]) == (
        None,
        ["crm"],
    )


def test_without_a_version_a_client_crm_has_not_got_is_still_404(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = register()
    crm_answers(monkeypatch, version=1, found=False)

    with pytest.raises(NotFound):
        gateway.client_details(client_id=process.client_id)


def test_a_delivery_that_moves_the_client_on_and_completes_its_process_announces_that_version(
    choreography: None,
) -> None:
    from integration import actions
    from integration.core import signals

    registration = register()
    deliver_all()
    # nobody listens to the update's event: crm's delivery completes the process itself
    for listener in bus.listeners_of("ClientUpdated"):
        actions.listener_set(name=listener.name, state="disabled", by="test")
    announced: list[tuple[str, int | None]] = []

    def heard(sender: Any, process: Process, status: str, **_: Any) -> None:
        announced.append((status, process.client_version))

    signals.process_status_changed.connect(heard, weak=False)
    try:
        update = gateway.client_update(
            client_id=registration.client_id, initiator=gateway.SYSTEM, company="Engines"
        )
        deliver_all()
    finally:
        signals.process_status_changed.disconnect(heard)

    current = Client.objects.get(pk=registration.client_id).version
    assert announced == [("completed", current)]
    assert version_of(update) == current
