"""The process admin: search, filters, the trace page, operators' actions (each audited), the
outbox, listener switches, webhooks, the runtime mode — and every list in constant queries."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.recent import forget_all
from integration import actions, gateway
from integration.core import modes
from integration.models import (
    AuditEntry,
    Delivery,
    EventRecord,
    ListenerSwitch,
    Process,
    RuntimeMode,
    Step,
    WebhookAttempt,
    WebhookDelivery,
)
from integration.orchestrator import engine
from shop_api.auth import token_issue

pytestmark = pytest.mark.django_db

ADMIN = "/admin/integration"


@pytest.fixture(autouse=True)
def orchestration() -> None:
    actions.mode_switch(mode="orchestration", changed_by="test")


def staff(team: str | None = None, *, name: str = "operator", perms: tuple[str, ...] = ()) -> Any:
    user = get_user_model().objects.create_user(name, password="x" * 12, is_staff=True)
    if team:
        user.groups.add(Group.objects.get(name=team))
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def operator() -> Browser:
    browser = Browser()
    browser.force_login(staff("Operations"))
    return browser


def register(email: str = "ada@example.com") -> Process:
    return gateway.client_register(
        **{"email": email, "first_name": "Ada", "last_name": "Lovelace"},
        initiator=gateway.SYSTEM,
    )


def failed_registration(settings: Any) -> tuple[Process, Step]:
    """A registration whose first step ran out of attempts (crm never answered)."""
    settings.ORCHESTRATOR_MAX_ATTEMPTS = 1
    process = register()
    Step.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    engine.steps_sweep()
    process.refresh_from_db()
    assert process.status == "failed"
    return process, Step.objects.get(process=process)


def choreographed_failure() -> tuple[Process, EventRecord, Delivery]:
    """A choreographed registration whose delivery to sales is dead."""
    process = Process.objects.create(
        kind="client_registration", mode="choreography", client_id=uuid.uuid4(), status="failed"
    )
    event = EventRecord.objects.create(
        name="ClientCreated", source="crm", process=process, client_id=process.client_id
    )
    delivery = Delivery.objects.create(
        event=event,
        process=process,
        listener="sales.replicate_client",
        component="sales",
        status="dead",
        attempts=8,
        last_error="RuntimeError: boom",
    )
    return process, event, delivery


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def listed_ids(html: str) -> set[str]:
    return set(re.findall(r'href="/admin/integration/process/([0-9a-f-]{36})/change/', html))


def audits() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("at", "id").values_list("actor", "action", "target"))


# --- finding processes ------------------------------------------------------------------------


def test_processes_are_found_by_process_id_client_id_and_client_email(operator: Browser) -> None:
    ada, grace = register("Ada@Example.com"), register("grace@example.com")

    def search(term: str) -> set[str]:
        return listed_ids(page(operator.get(f"{ADMIN}/process/", {"q": term})))

    assert search(str(ada.id)) == {str(ada.id)}
    assert search(f" {str(grace.id).upper()} ") == {str(grace.id)}
    assert search(str(ada.client_id)) == {str(ada.id)}
    assert search("Ada@EXAMPLE.com") == {str(ada.id)}
    assert search("nobody@example.com") == set()
    assert search("create_client") == {str(ada.id), str(grace.id)}


def test_processes_are_filtered_by_kind_mode_and_status(operator: Browser) -> None:
    running = register()
    closed = Process.objects.create(
        kind="purchase", mode="choreography", client_id=uuid.uuid4(), status="closed"
    )

    def listed(**filters: str) -> set[str]:
        return listed_ids(page(operator.get(f"{ADMIN}/process/", filters)))

    assert listed(kind__exact="purchase") == {str(closed.id)}
    assert listed(mode__exact="orchestration") == {str(running.id)}
    assert listed(status__exact="running") == {str(running.id)}
    assert listed(status__exact="closed", mode__exact="choreography") == {str(closed.id)}


# --- a process's page -------------------------------------------------------------------------


def test_a_process_page_shows_its_trace_as_a_timeline_and_a_sequence_diagram(
    operator: Browser, settings: Any
) -> None:
    process, step = failed_registration(settings)

    html = page(operator.get(f"{ADMIN}/process/{process.id}/change/"))

    assert html.count('<tr class="') >= 5
    assert '<h2 id="timeline-heading">Timeline</h2>' in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sequence"' in html
    for lane in ("integration", "crm", "sales", "correspondence", "marketing"):
        assert f'text-anchor="middle">{lane}' in html
    assert f'action="/admin/integration/process/{process.id}/retry-step/{step.id}/"' in html
    assert f'action="/admin/integration/process/{process.id}/close/"' in html
    assert 'name="_save"' not in html  # read-only: rows change through their functions
    assert "no answer from crm after 1 attempts" in html


def test_a_choreographed_process_page_offers_delivery_retry_and_replay(operator: Browser) -> None:
    process, event, delivery = choreographed_failure()

    html = page(operator.get(f"{ADMIN}/process/{process.id}/change/"))

    assert f'action="/admin/integration/delivery/{delivery.id}/retry/"' in html
    assert f'action="/admin/integration/eventrecord/{event.id}/replay/"' in html
    assert "<option>sales.replicate_client</option>" in html
    assert "RuntimeError: boom" in html


# --- actions, each audited ----------------------------------------------------------------------


def test_retrying_a_failed_step_runs_the_process_again_and_is_audited(
    operator: Browser, settings: Any
) -> None:
    process, step = failed_registration(settings)

    response = operator.post(f"{ADMIN}/process/{process.id}/retry-step/{step.id}/", follow=True)

    process.refresh_from_db()
    step.refresh_from_db()
    assert "Step create_client is being retried." in page(response)
    assert (process.status, step.status, step.attempts) == ("running", "sent", 1)
    assert audits() == [("user:operator", "step.retry", str(step.id))]
    assert AuditEntry.objects.get().detail == {"process": str(process.id), "step": "create_client"}
    assert process.trace.filter(kind="action", status="running").count() == 1


def test_retrying_a_step_that_has_not_failed_is_refused_with_a_message(operator: Browser) -> None:
    process = register()
    step = Step.objects.get(process=process)

    response = operator.post(f"{ADMIN}/process/{process.id}/retry-step/{step.id}/", follow=True)

    assert "Not done: only a failed step of a failed process can be retried" in page(response)
    assert audits() == []


def test_closing_a_process_needs_a_reason_and_is_audited(operator: Browser) -> None:
    process = register()
    url = f"{ADMIN}/process/{process.id}/close/"

    refused = page(operator.post(url, {"reason": "  "}, follow=True))
    process.refresh_from_db()
    assert "Not closed: give a reason" in refused and process.status == "running"

    closed = page(operator.post(url, {"reason": "Customer asked by phone"}, follow=True))
    process.refresh_from_db()
    assert "The process is closed." in closed
    assert process.status == "closed"
    assert Step.objects.get(process=process).status == "skipped"
    assert audits() == [("user:operator", "process.close", str(process.id))]
    assert AuditEntry.objects.get().detail == {
        "reason": "Customer asked by phone",
        "kind": "client_registration",
    }
    again = page(operator.post(url, {"reason": "again"}, follow=True))
    assert "Not done: a closed process cannot be closed" in again


def test_retrying_a_dead_delivery_resumes_the_process_and_is_audited(operator: Browser) -> None:
    process, _, delivery = choreographed_failure()

    response = operator.post(
        f"{ADMIN}/delivery/{delivery.id}/retry/", {"next": "process"}, follow=True
    )

    delivery.refresh_from_db()
    process.refresh_from_db()
    assert response.redirect_chain[-1][0] == f"{ADMIN}/process/{process.id}/change/"
    assert "The delivery to sales.replicate_client is being retried." in page(response)
    assert (delivery.status, delivery.attempts, process.status) == ("sent", 0, "running")
    assert audits() == [("user:operator", "delivery.retry", str(delivery.id))]


def test_replaying_an_event_to_a_listener_is_a_new_delivery_and_is_audited(
    operator: Browser,
) -> None:
    _, event, _ = choreographed_failure()
    url = f"{ADMIN}/eventrecord/{event.id}/replay/"

    done = page(operator.post(url, {"listener": "sales.replicate_client"}, follow=True))
    wrong = page(operator.post(url, {"listener": "crm.create_client"}, follow=True))

    replay = Delivery.objects.get(replay=True)
    assert "ClientCreated is being replayed to sales.replicate_client." in done
    assert "Not done: crm.create_client does not listen to ClientCreated" in wrong
    assert (replay.listener, replay.status) == ("sales.replicate_client", "sent")
    assert audits() == [("user:operator", "event.replay", str(event.id))]


def test_bulk_actions_retry_the_failed_steps_and_dead_deliveries(
    operator: Browser, settings: Any
) -> None:
    _, step = failed_registration(settings)
    _, _, delivery = choreographed_failure()

    operator.post(
        f"{ADMIN}/step/", {"action": "retry_failed_steps", "_selected_action": [str(step.id)]}
    )
    operator.post(
        f"{ADMIN}/delivery/",
        {"action": "retry_dead_deliveries", "_selected_action": [str(delivery.id)]},
    )

    assert Step.objects.get(pk=step.id).status == "sent"
    assert Delivery.objects.get(pk=delivery.id).status == "sent"
    assert {action for _, action, _ in audits()} == {"step.retry", "delivery.retry"}


def test_only_operations_act_and_only_staff_with_the_permission_see(settings: Any) -> None:
    process, step = failed_registration(settings)
    _, event, delivery = choreographed_failure()
    viewer = Browser()
    viewer.force_login(staff(name="viewer", perms=("view_process", "view_delivery")))
    seller = Browser()
    seller.force_login(staff("Sales", name="seller"))

    html = page(viewer.get(f"{ADMIN}/process/{process.id}/change/"))
    assert "retry-step" not in html and "/close/" not in html
    assert viewer.post(f"{ADMIN}/process/{process.id}/retry-step/{step.id}/").status_code == 403
    assert viewer.post(f"{ADMIN}/process/{process.id}/close/", {"reason": "x"}).status_code == 403
    assert viewer.post(f"{ADMIN}/delivery/{delivery.id}/retry/").status_code == 403
    assert viewer.post(f"{ADMIN}/eventrecord/{event.id}/replay/").status_code == 403
    assert seller.get(f"{ADMIN}/process/").status_code == 403
    assert audits() == []


# --- listener switches, the mode, webhooks ------------------------------------------------------


def test_listener_switches_list_every_listener_with_state_and_backlog(operator: Browser) -> None:
    from integration import bus

    _, _, delivery = choreographed_failure()
    Delivery.objects.filter(pk=delivery.pk).update(status="held")

    html = page(operator.get(f"{ADMIN}/listenerswitch/"))

    for listener in bus.registry():
        assert f'<th scope="row">{listener.name}</th>' in html
    assert re.search(r"sales.replicate_client</th>\s*<td>enabled</td>\s*<td>1</td>", html)


def test_switching_a_listener_or_a_whole_component_is_audited(operator: Browser) -> None:
    url = f"{ADMIN}/listenerswitch/"

    operator.post(url, {"name": "correspondence.send_welcome_email", "state": "disabled"})
    operator.post(url, {"name": "marketing", "state": "paused"})
    refused = page(operator.post(url, {"name": "nobody.listens", "state": "paused"}, follow=True))

    states = dict(ListenerSwitch.objects.values_list("listener", "state"))
    assert states["correspondence.send_welcome_email"] == "disabled"
    assert {name for name, state in states.items() if state == "paused"} == {
        "marketing.join_audience",
        "marketing.sync_audience",
        "marketing.erase_client",
    }
    assert "Not done: no listener or component named" in refused
    assert [action for _, action, _ in audits()] == ["listeners.disabled", "listeners.paused"]


def test_the_runtime_mode_is_switched_through_mode_set_and_audited(operator: Browser) -> None:
    html = page(operator.get(f"{ADMIN}/runtimemode/"))
    assert "New processes start in <strong>orchestration</strong> mode" in html

    done = page(operator.post(f"{ADMIN}/runtimemode/", {"mode": "choreography"}, follow=True))
    bad = page(operator.post(f"{ADMIN}/runtimemode/", {"mode": "anarchy"}, follow=True))

    assert "New processes start in choreography mode." in done
    assert "Not switched" in bad
    assert RuntimeMode.objects.get().mode == "choreography"
    assert ("user:operator", "mode.switch", "choreography") in audits()


def test_the_mode_and_listeners_are_not_switched_without_the_permission() -> None:
    viewer = Browser()
    viewer.force_login(staff(name="viewer", perms=("view_runtimemode", "view_listenerswitch")))

    assert "<form" not in page(viewer.get(f"{ADMIN}/runtimemode/")).split('id="content-main"')[1]
    assert viewer.post(f"{ADMIN}/runtimemode/", {"mode": "choreography"}).status_code == 403
    assert viewer.post(f"{ADMIN}/listenerswitch/", {"name": "marketing"}).status_code == 403
    assert modes.mode_get() == "orchestration"


def test_webhook_deliveries_show_their_attempts(operator: Browser) -> None:
    webhook = make_webhook()
    WebhookAttempt.objects.create(delivery=webhook, status_code=503, duration_ms=12)
    WebhookAttempt.objects.create(delivery=webhook, error="connection refused", duration_ms=3)

    listed = page(operator.get(f"{ADMIN}/webhookdelivery/"))
    detail = page(operator.get(f"{ADMIN}/webhookdelivery/{webhook.id}/change/"))

    assert 'class="field-attempt_count">2</td>' in listed
    assert "503" in detail and "connection refused" in detail


def make_webhook() -> WebhookDelivery:
    token = token_issue(name=f"shop-{uuid.uuid4().hex[:6]}", callback_url="https://shop.test/cb")
    process = Process.objects.create(
        kind="purchase", mode="orchestration", client_id=uuid.uuid4(), initiator_token=token.token
    )
    return WebhookDelivery.objects.create(
        token=token.token, process=process, event="process.completed", payload={}
    )


# --- every list page in a constant number of queries -------------------------------------------


def make_rows(model: str) -> None:
    if model in ("process", "step"):
        register(f"{uuid.uuid4().hex[:8]}@example.com")
    elif model in ("eventrecord", "delivery"):
        choreographed_failure()
    elif model == "webhookdelivery":
        WebhookAttempt.objects.create(delivery=make_webhook(), status_code=200)
    elif model == "auditentry":
        AuditEntry.objects.create(actor="test", action="test.row", target=uuid.uuid4().hex)
    elif model == "apitoken":
        token_issue(name=f"shop-{uuid.uuid4().hex[:6]}")
    elif model == "listenerswitch":
        choreographed_failure()


@pytest.mark.parametrize(
    "model",
    [
        "process",
        "step",
        "eventrecord",
        "delivery",
        "webhookdelivery",
        "auditentry",
        "apitoken",
        "listenerswitch",
        "runtimemode",
    ],
)
def test_every_list_page_runs_a_constant_number_of_queries(model: str) -> None:
    browser = Browser()
    browser.force_login(get_user_model().objects.create_superuser("root", "r@x.org", "x" * 12))
    counts = []
    for rows in (1, 5):
        while _rows_of(model) < rows:
            make_rows(model)
        forget_all()  # both pages read what a process reuses for a second afresh
        with CaptureQueriesContext(connection) as queries:
            page(browser.get(f"{ADMIN}/{model}/"))
        counts.append(len(queries))

    assert counts[0] == counts[1], counts


def _rows_of(model: str) -> int:
    from django.apps import apps

    if model in ("listenerswitch", "runtimemode"):
        return Delivery.objects.count() if model == "listenerswitch" else 5
    return int(apps.get_model("integration", model).objects.count())


def test_the_admin_index_lists_the_integration_pages(operator: Browser) -> None:
    html = page(operator.get("/admin/integration/"))

    for name in ("Processes", "Steps", "Events", "Deliveries", "Listener switch"):
        assert name in html, name


def test_each_page_is_reachable(operator: Browser, settings: Any) -> None:
    _, step = failed_registration(settings)
    _, event, delivery = choreographed_failure()

    for url in (
        f"{ADMIN}/step/{step.id}/change/",
        f"{ADMIN}/eventrecord/{event.id}/change/",
        f"{ADMIN}/delivery/{delivery.id}/change/",
        f"{ADMIN}/auditentry/",
        f"{ADMIN}/process/?q=not-a-uuid",
    ):
        page(operator.get(url))
    assert operator.get(f"{ADMIN}/process/not-a-uuid/change/").status_code == 302


# --- counting the process list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "shown", "tallied"),
    [
        ("", 3, True),
        ("?status__exact=running&o=2", 3, True),
        ("?mode__exact=choreography", 0, True),
        ("?q=a@example.com", 1, False),  # a search is counted the usual way
    ],
)
def test_the_process_list_is_counted_from_the_kept_tallies_when_only_filtered(
    operator: Browser, query: str, shown: int, tallied: bool
) -> None:
    for name in ("a", "b", "c"):
        register(f"{name}@example.com")

    with CaptureQueriesContext(connection) as queries:
        answer = operator.get(f"{ADMIN}/process/{query}")

    assert answer.status_code == 200
    assert answer.context["cl"].result_count == shown
    counted_every_process = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "integration_process"')
    ]
    assert (len(counted_every_process) == 0) is tallied
