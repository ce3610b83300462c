"""`/integration/compare/`: the figures per mode and kind, from rows written here with known
times, the window, who may see it, and a bounded number of queries whatever the data."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client as Browser
from django.utils import timezone

from integration.models import Delivery, EventRecord, Process, ReconcileRun, Step, TraceEntry
from sales.models import CustomerReplica
from staff import compare_figures
from tests.crm.factories import ClientFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
TEN_MINUTES_AGO = NOW - timedelta(minutes=10)
TWO_DAYS_AGO = NOW - timedelta(days=2)


def process(
    mode: str, kind: str, *, started: datetime, seconds: float | None, status: str = "completed"
) -> Process:
    """A process as it ran: started then, finished `seconds` later (None: still running)."""
    made = Process.objects.create(kind=kind, mode=mode, client_id=uuid.uuid4(), status=status)
    finished = started + timedelta(seconds=seconds) if seconds is not None else None
    Process.objects.filter(pk=made.pk).update(started_at=started, finished_at=finished)
    made.refresh_from_db()
    return made


def trace(made: Process, *entries: tuple[str, str, str, dict[str, Any] | None]) -> None:
    """Entries (component, kind, status, detail), numbered in order."""
    TraceEntry.objects.bulk_create(
        TraceEntry(
            process=made,
            seq=seq,
            at=made.started_at,
            component=component,
            name="work",
            kind=kind,
            status=status,
            detail=detail,
        )
        for seq, (component, kind, status, detail) in enumerate(entries, start=1)
    )


@pytest.fixture
def ran() -> dict[str, Process]:
    """Orchestrated purchases (4 finished in 1, 2, 3 and 10 s, one running, one two days old)
    and choreographed ones (finished in 0.5 and 1.5 s), with their trace, steps and deliveries."""
    orchestrated = [
        process("orchestration", "purchase", started=TEN_MINUTES_AGO, seconds=seconds)
        for seconds in (1, 2, 3, 10)
    ]
    running = process(
        "orchestration", "purchase", started=TEN_MINUTES_AGO, seconds=None, status="running"
    )
    old = process("orchestration", "purchase", started=TWO_DAYS_AGO, seconds=60)
    first, second, third, _ = orchestrated
    trace(
        first,
        ("integration", "command", "sent", None),
        ("crm", "retry", "retry", None),
        ("crm", "step", "done", None),
        ("integration", "action", "failed", None),
        ("integration", "action", "running", {"by": "operator"}),
        ("sales", "step", "done", None),
    )
    trace(
        second,
        ("integration", "failure", "stuck", None),
        ("integration", "action", "closed", {"by": "operator", "reason": "by hand"}),
    )
    trace(third, ("integration", "action", "closed", {"by": "integration"}))
    trace(old, ("crm", "retry", "retry", None), ("crm", "retry", "retry", None))
    Step.objects.create(
        process=first, position=1, name="a", component="sales", status="done", attempts=1
    )
    Step.objects.create(
        process=first, position=2, name="b", component="crm", status="done", attempts=3
    )

    choreographed = [
        process("choreography", "purchase", started=TEN_MINUTES_AGO, seconds=seconds)
        for seconds in (0.5, 1.5)
    ]
    event = EventRecord.objects.create(
        name="PurchaseRequested", source="integration", process=choreographed[0]
    )
    for listener, sends in (("sales.record_purchase", 1), ("crm.add_value", 2)):
        Delivery.objects.create(
            event=event,
            process=choreographed[0],
            listener=listener,
            component=listener.split(".")[0],
            status="done",
            sends=sends,
        )
    trace(
        choreographed[0],
        ("integration", "event", "published", None),
        ("sales", "delivery", "done", None),
        ("crm", "delivery", "done", None),
        ("crm", "failure", "stuck", None),
    )
    return {"first": first, "running": running, "old": old}


def test_the_figures_per_mode_and_kind_are_those_of_the_processes_that_ran(
    ran: dict[str, Process],
) -> None:
    found = compare_figures.comparison(window=compare_figures.window_of(choice="day"))

    orchestrated = found.cell("orchestration", "purchase")
    assert (orchestrated.processes, orchestrated.finished) == (5, 4)
    # percentile_cont over 1, 2, 3, 10 s: 2.5 and 3 + 0.85·7 = 8.95; SQLite keeps milliseconds.
    assert orchestrated.p50_seconds == pytest.approx(2.5, abs=0.002)
    assert orchestrated.p95_seconds == pytest.approx(8.95, abs=0.002)
    assert orchestrated.p50_seconds is not None and orchestrated.p95_seconds is not None
    assert 1 <= orchestrated.p50_seconds <= orchestrated.p95_seconds <= 10
    assert (orchestrated.messages, orchestrated.sends) == (2, 4)
    assert orchestrated.messages_per_process == 0.4
    assert orchestrated.trace_entries == 9
    assert orchestrated.trace_entries_per_process == 1.8
    assert (orchestrated.retries, orchestrated.failed, orchestrated.stuck) == (1, 1, 1)
    assert orchestrated.closed_by_hand == 1  # the orchestrator's own close is not by hand
    assert orchestrated.components == ["crm", "integration", "sales"]

    choreographed = found.cell("choreography", "purchase")
    assert (choreographed.processes, choreographed.finished) == (2, 2)
    assert choreographed.p50_seconds == pytest.approx(1.0, abs=0.002)
    assert choreographed.p95_seconds == pytest.approx(0.5 + 0.95, abs=0.002)
    assert (choreographed.messages, choreographed.sends) == (2, 3)
    assert choreographed.messages_per_process == 1.0
    assert (choreographed.trace_entries, choreographed.retries) == (4, 0)
    assert (choreographed.failed, choreographed.stuck, choreographed.closed_by_hand) == (0, 1, 0)
    assert choreographed.components == ["crm", "integration", "sales"]

    nothing = found.cell("choreography", "client_registration")
    assert (nothing.processes, nothing.p50_seconds, nothing.components) == (0, None, [])


def test_the_window_takes_the_processes_started_in_it(ran: dict[str, Process]) -> None:
    week = compare_figures.comparison(window=compare_figures.window_of(choice="week"))
    hour = compare_figures.comparison(window=compare_figures.window_of(choice="hour"))
    day_of_the_old_one = timezone.localdate(TWO_DAYS_AGO)
    dates = compare_figures.comparison(
        window=compare_figures.window_of(since=day_of_the_old_one, until=day_of_the_old_one)
    )

    assert week.cell("orchestration", "purchase").processes == 6
    assert week.cell("orchestration", "purchase").retries == 3
    assert week.cell("orchestration", "purchase").p95_seconds == pytest.approx(
        10 + 0.8 * 50, abs=0.002
    )
    assert hour.cell("orchestration", "purchase").processes == 5
    only_the_old_one = dates.cell("orchestration", "purchase")
    assert (only_the_old_one.processes, only_the_old_one.retries) == (1, 2)
    assert only_the_old_one.p50_seconds == pytest.approx(60, abs=0.002)
    assert dates.cell("choreography", "purchase").processes == 0


def test_the_page_draws_each_chart_with_its_table_for_both_modes(
    ran: dict[str, Process], browser_for: Callable[..., Browser]
) -> None:
    response = browser_for("Operations").get("/integration/compare/", {"window": "day"})

    assert response.status_code == 200
    page = response.content.decode()
    charts = len(compare_figures.MODE_CHARTS) + 1  # and the replicas' chart
    assert page.count('role="img"') == charts
    assert page.count("<table>") == charts + 1  # and the components' table
    assert page.count('class="table-scroll chart-box" tabindex="0" role="region"') == charts
    assert '<title id="chart-p95-seconds-title">Latency p95</title>' in page
    assert "8.95 s" in page and "2.50 s" in page
    assert '<th scope="col" class="number">orchestration</th>' in page
    assert '<th scope="col" class="number">choreography</th>' in page


def test_the_window_form_refuses_an_end_before_its_start(
    browser_for: Callable[..., Browser],
) -> None:
    response = browser_for("Operations").get(
        "/integration/compare/", {"since": "2026-05-02", "until": "2026-05-01"}
    )

    assert response.status_code == 400
    assert "The end comes before the start." in response.content.decode()


def test_duplicated_rows_are_the_replicas_beside_crm_with_the_last_reconcile(
    browser_for: Callable[..., Browser],
) -> None:
    clients = ClientFactory.create_batch(3, marketing_consent=False)
    for client in clients[:2]:
        CustomerReplica.objects.create(
            client_id=client.id,
            email=client.email,
            first_name="Ada",
            last_name="L",
            registered_at=NOW,
            client_version=1,
            as_of=NOW,
        )
    ReconcileRun.objects.create(
        started_at=NOW, finished_at=NOW, by="test", clients=3, differences={"sales.customers": 1}
    )

    found = compare_figures.comparison(window=compare_figures.window_of(choice="day"))

    replicas = {replica.name: replica for replica in found.replicas}
    customers = replicas["sales.customers"]
    assert (customers.rows, customers.owner_rows, customers.differences) == (2, 3, 1)
    assert customers.modes == ("choreography",)
    assert replicas["marketing.audience"].modes == ("orchestration", "choreography")
    assert replicas["correspondence.recipients"].differences is None  # not compared then
    assert found.duplicated_rows == 2
    page = browser_for("Operations").get("/integration/compare/").content.decode()
    assert "3 clients compared" in page


@pytest.mark.parametrize("team", ["Marketing", "Sales", "Customer Relations", None])
def test_only_operations_see_the_comparison(
    team: str | None, browser_for: Callable[..., Browser]
) -> None:
    assert browser_for(team).get("/integration/compare/").status_code == 403


def test_a_visitor_who_is_not_logged_in_is_sent_to_the_login(client: Browser) -> None:
    response = client.get("/integration/compare/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/integration/compare/"


def test_operations_find_the_comparison_from_the_dashboard(
    browser_for: Callable[..., Browser],
) -> None:
    operations = browser_for("Operations").get("/").content.decode()
    marketing = browser_for("Marketing").get("/").content.decode()

    assert 'href="/integration/compare/"' in operations
    assert 'href="/integration/compare/"' not in marketing


def test_the_page_costs_the_same_queries_for_six_processes_or_sixty(
    ran: dict[str, Process],
    browser_for: Callable[..., Browser],
    django_assert_max_num_queries: Any,
) -> None:
    browser = browser_for("Operations")
    browser.get("/integration/compare/")  # the session and permissions, read once
    with django_assert_max_num_queries(12) as few:
        assert browser.get("/integration/compare/", {"window": "week"}).status_code == 200
    for _ in range(54):
        process("orchestration", "client_update", started=TEN_MINUTES_AGO, seconds=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert browser.get("/integration/compare/", {"window": "week"}).status_code == 200
