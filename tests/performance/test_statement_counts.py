"""How many SQL statements each unit of work takes, pinned: a change that makes one grow fails
here (and must say why in its own change of these numbers). Counted inside the test's
transaction, so each atomic block below the view shows as a SAVEPOINT and its RELEASE."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from integration import actions, bus
from integration.core import relay
from integration.models import Delivery, Process, Step
from integration.orchestrator import engine, lookups
from tests.api.conftest import Shop, issue

pytestmark = pytest.mark.django_db

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}

# statements per unit of work (see the module's docstring)
ACCEPT = {"orchestration": 6, "choreography": 8}
DETAILS = {"orchestration": 1, "choreography": 3}
LOOKUP_ANSWER = {"crm": 2, "sales": 1}  # each component's side of an orchestrated details
STEP_CREATE_CLIENT = 11  # the client's version goes in with the trace's numbering UPDATE
STEP_OPEN_ACCOUNT = 10  # reads no earlier result: none is read
# two transactions: the intent, the message claimed with it; the outcome, step done, next (and
# between them, the message and the erasure tombstone read again)
STEP_SEND_WELCOME_EMAIL = 21
DELIVERY_SEND_WELCOME_EMAIL = 24  # the intent and claim; the outcome, one trace write, settle
STEP_RECORD_WELCOME_EMAIL = 14  # the client locked and bumped in the step's transaction
DELIVERY_CREATE_CLIENT = 14  # the event's erasure and switches: one read; the version: the bump


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay.app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture(autouse=True)
def warm_memos(settings: Any) -> None:
    """The counts are a warm process's: the token and the runtime mode, read once, are kept for
    the whole test (a busy machine must not let the one-second memos lapse between the warm-up
    and the request counted; that they do lapse is tested in tests/api and tests/integration)."""
    settings.RECENT_MAX_AGE = 3600


@pytest.fixture
def shop() -> Shop:
    return Shop(issue("shop"))


def registered(shop: Shop, mode: str) -> str:
    actions.mode_switch(mode=mode)
    shop.post("/api/v1/clients/", {**ADA, "email": "warm-up@example.com"})  # token, mode read
    answer = shop.post("/api/v1/clients/", ADA)
    assert answer.status == 202
    return str(answer.body["client_id"])


@pytest.mark.parametrize("mode", ["orchestration", "choreography"])
def test_accepting_a_registration(
    shop: Shop, mode: str, django_assert_num_queries: Callable[..., Any]
) -> None:
    actions.mode_switch(mode=mode)
    shop.post("/api/v1/clients/", {**ADA, "email": "warm-up@example.com"})

    with django_assert_num_queries(ACCEPT[mode]):
        assert shop.post("/api/v1/clients/", ADA).status == 202


def test_choreographed_details(shop: Shop, django_assert_num_queries: Callable[..., Any]) -> None:
    client_id = registered(shop, "choreography")
    for _ in range(20):
        delivery = Delivery.objects.filter(status="sent").order_by("created_at").first()
        if delivery is None:
            break
        bus.deliver(delivery_id=delivery.id)

    with django_assert_num_queries(DETAILS["choreography"]):
        answer = shop.get(f"/api/v1/clients/{client_id}/")
    assert answer.body["served_by"]["source"] == "sales-replica"


def test_orchestrated_details_on_the_web_side(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Callable[..., Any]
) -> None:
    client_id = registered(shop, "orchestration")

    def ask(components: list[str], client: UUID) -> tuple[dict[str, Any], list[str]]:
        return {}, sorted(components)  # the components' own reads happen in their workers

    monkeypatch.setattr(lookups, "ask", ask)

    with django_assert_num_queries(DETAILS["orchestration"]):
        assert shop.get(f"/api/v1/clients/{client_id}/").status == 200


@pytest.mark.parametrize("component", ["crm", "sales"])
def test_a_components_answer_to_a_details_lookup(
    shop: Shop, component: str, django_assert_num_queries: Callable[..., Any]
) -> None:
    client_id = UUID(registered(shop, "orchestration"))
    create = Step.objects.filter(name="create_client").order_by("created_at").last()
    assert create is not None
    engine.step_execute(step_id=create.id)  # crm holds the client

    with django_assert_num_queries(LOOKUP_ANSWER[component]):
        answer = lookups.answer(component, client_id)
    assert answer["found"] is True


def test_an_orchestrated_step_that_creates_the_client(
    shop: Shop, django_assert_num_queries: Callable[..., Any]
) -> None:
    registered(shop, "orchestration")
    create = Step.objects.filter(name="create_client").order_by("created_at").last()
    assert create is not None

    with django_assert_num_queries(STEP_CREATE_CLIENT):
        assert engine.step_execute(step_id=create.id) == "done"
    assert Process.objects.get(pk=create.process_id).client_version == 1


def test_an_orchestrated_step(shop: Shop, django_assert_num_queries: Callable[..., Any]) -> None:
    registered(shop, "orchestration")
    create = Step.objects.filter(name="create_client").order_by("created_at").last()
    assert create is not None
    assert engine.step_execute(step_id=create.id) == "done"
    step = Step.objects.get(process=create.process_id, name="open_account")

    with django_assert_num_queries(STEP_OPEN_ACCOUNT):
        assert engine.step_execute(step_id=step.id) == "done"


def step_reached(shop: Shop, name: str) -> Step:
    """A new registration's step `name`, the steps before it carried out."""
    registered(shop, "orchestration")
    process_id = Step.objects.filter(name="create_client").latest("created_at").process_id
    while (step := Step.objects.filter(process=process_id).latest("position")).name != name:
        assert engine.step_execute(step_id=step.id) == "done"
    return step


@pytest.mark.parametrize(
    ("name", "statements"),
    [
        ("send_welcome_email", STEP_SEND_WELCOME_EMAIL),
        ("record_welcome_email", STEP_RECORD_WELCOME_EMAIL),
    ],
)
def test_the_orchestrated_steps_of_the_email(
    name: str, statements: int, shop: Shop, django_assert_num_queries: Callable[..., Any]
) -> None:
    step = step_reached(shop, name)

    with django_assert_num_queries(statements):
        assert engine.step_execute(step_id=step.id) == "done"


def test_a_choreographed_delivery(
    shop: Shop, django_assert_num_queries: Callable[..., Any]
) -> None:
    registered(shop, "choreography")
    delivery = Delivery.objects.filter(listener="crm.create_client").order_by("created_at").last()
    assert delivery is not None

    with django_assert_num_queries(DELIVERY_CREATE_CLIENT):
        assert bus.deliver(delivery_id=delivery.id) == "done"
    assert Process.objects.get(pk=delivery.process_id or "").client_version == 1


def test_a_choreographed_delivery_that_sends_an_email(
    shop: Shop, django_assert_num_queries: Callable[..., Any]
) -> None:
    registered(shop, "choreography")
    create = Delivery.objects.filter(listener="crm.create_client").latest("created_at")
    process_id = create.process_id
    assert process_id is not None
    assert bus.deliver(delivery_id=create.id) == "done"
    delivery = Delivery.objects.get(
        process_id=process_id, listener="correspondence.send_welcome_email"
    )

    with django_assert_num_queries(DELIVERY_SEND_WELCOME_EMAIL):
        assert bus.deliver(delivery_id=delivery.id) == "done"
