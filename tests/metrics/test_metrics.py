"""`/metrics`: the figures parsed as Prometheus reads them and compared with the database, who
may scrape them, and what a scrape costs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as Browser
from django.utils import timezone
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from integration.models import Delivery, EventRecord, Process, ReconcileRun, Step
from metrics.access import is_loopback
from metrics.collector import REGISTRY

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def process(kind: str, mode: str, status: str, seconds: float | None = None) -> Process:
    made = Process.objects.create(kind=kind, mode=mode, client_id=uuid.uuid4(), status=status)
    started = NOW - timedelta(hours=1)
    finished = started + timedelta(seconds=seconds) if seconds is not None else None
    Process.objects.filter(pk=made.pk).update(started_at=started, finished_at=finished)
    return made


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by its name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(client: Browser, **headers: Any) -> Any:
    return client.get("/metrics", **headers)


@pytest.fixture
def work() -> dict[str, Any]:
    """Processes in several states, open and dead outbox rows, and a reconcile."""
    durations = (0.2, 3, 45)
    now = timezone.now()
    for seconds in durations:
        process("purchase", "orchestration", "completed", seconds)
    process("purchase", "orchestration", "failed", 7000)
    running = process("client_registration", "choreography", "running")
    process("client_registration", "choreography", "stuck")
    old = Step.objects.create(
        process=running, position=1, name="a", component="crm", status="pending"
    )
    Step.objects.filter(pk=old.pk).update(created_at=now - timedelta(seconds=120))
    Step.objects.create(process=running, position=2, name="b", component="crm", status="held")
    Step.objects.create(process=running, position=3, name="c", component="sales", status="done")
    event = EventRecord.objects.create(name="ClientCreated", source="crm", process=running)
    for listener, status in (
        ("sales.replicate_client", "sent"),
        ("marketing.join_audience", "held"),
        ("correspondence.remember_recipient", "dead"),
        ("correspondence.update_recipient", "dead"),
        ("crm.other", "done"),
    ):
        Delivery.objects.create(
            event=event,
            process=running,
            listener=listener,
            component=listener.split(".")[0],
            status=status,
        )
    ReconcileRun.objects.create(
        started_at=NOW - timedelta(hours=2),
        finished_at=NOW - timedelta(hours=2),
        by="old",
        differences={"sales.customers": 9},
    )
    ReconcileRun.objects.create(
        started_at=NOW,
        finished_at=NOW,
        by="scheduler",
        differences={"sales.customers": 2, "marketing.audience": 0},
    )
    return {"durations": durations, "now": now}


def test_the_figures_are_the_databases(client: Browser, work: dict[str, Any]) -> None:
    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content.decode())
    processes = {key: value for key, value in found.items() if key[0] == "ensemble_processes"}
    # Every kind, mode and status, zeros included, and each the database's count.
    assert len(processes) == 4 * 2 * 5
    for (_, labels), value in processes.items():
        label = dict(labels)
        assert value == Process.objects.filter(**label).count(), label
    assert (
        found[
            (
                "ensemble_processes",
                (("kind", "purchase"), ("mode", "orchestration"), ("status", "completed")),
            )
        ]
        == 3
    )

    purchase = (("kind", "purchase"), ("mode", "orchestration"))
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in found.items()
        if name == "ensemble_process_duration_seconds_bucket"
        and dict(labels)["kind"] == "purchase"
        and dict(labels)["mode"] == "orchestration"
    }
    assert buckets["0.1"] == 0
    assert buckets["0.25"] == 1
    assert buckets["2.5"] == 1
    assert buckets["5.0"] == 2
    assert buckets["60.0"] == 3
    assert buckets["3600.0"] == 3
    assert buckets["+Inf"] == 4  # the failed one took 7000 s
    assert found[("ensemble_process_duration_seconds_count", purchase)] == 4
    assert found[("ensemble_process_duration_seconds_sum", purchase)] == pytest.approx(
        0.2 + 3 + 45 + 7000, abs=0.01
    )
    registrations = (("kind", "client_registration"), ("mode", "choreography"))
    assert found[("ensemble_process_duration_seconds_count", registrations)] == 0

    assert found[("ensemble_backlog", (("component", "crm"),))] == 2  # pending + held steps
    assert found[("ensemble_backlog", (("component", "sales"),))] == 1  # the sent delivery
    assert found[("ensemble_backlog", (("component", "marketing"),))] == 1  # held delivery
    assert found[("ensemble_backlog", (("component", "correspondence"),))] == 0  # dead ones
    assert found[("ensemble_backlog", (("component", "integration"),))] == 0
    assert found[("ensemble_dead_deliveries", ())] == 2
    waited = (timezone.now() - work["now"]).total_seconds()  # however busy the machine is
    assert 120 <= found[("ensemble_outbox_oldest_seconds", ())] <= 120 + waited

    assert found[("ensemble_replica_drift", (("replica", "sales.customers"),))] == 2
    assert found[("ensemble_replica_drift", (("replica", "marketing.audience"),))] == 0


def test_an_empty_database_answers_zeros(client: Browser) -> None:
    found = samples(scrape(client).content.decode())

    assert found[("ensemble_dead_deliveries", ())] == 0
    assert found[("ensemble_outbox_oldest_seconds", ())] == 0
    assert not [key for key in found if key[0] == "ensemble_replica_drift"]
    assert sum(v for k, v in found.items() if k[0] == "ensemble_processes") == 0


def test_a_scrape_is_four_queries_however_much_work_there_is(
    client: Browser, work: dict[str, Any], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(4):
        generate_latest(REGISTRY)
    for _ in range(30):
        process("client_update", "orchestration", "completed", 1)
    with django_assert_num_queries(4):
        assert scrape(client).status_code == 200


def test_without_a_token_only_loopback_clients_are_answered(client: Browser, settings: Any) -> None:
    settings.METRICS_TOKEN = None

    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert scrape(client, REMOTE_ADDR="127.8.9.10").status_code == 200
    assert scrape(client, REMOTE_ADDR="::1").status_code == 200
    assert scrape(client, REMOTE_ADDR="10.0.0.7").status_code == 403
    assert scrape(client, REMOTE_ADDR="192.168.1.20").status_code == 403
    assert scrape(client, REMOTE_ADDR="2001:db8::1").status_code == 403
    assert scrape(client, REMOTE_ADDR="").status_code == 403


def test_with_a_token_every_client_must_send_it(client: Browser, settings: Any) -> None:
    settings.METRICS_TOKEN = "a-scrape-secret"

    assert scrape(client, REMOTE_ADDR="127.0.0.1").status_code == 401
    refused = scrape(client, REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer wrong")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert scrape(client, HTTP_AUTHORIZATION="Basic a-scrape-secret").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer a-scrape-secrét").status_code == 401
    answered = scrape(client, REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer a-scrape-secret")
    assert answered.status_code == 200
    assert b"ensemble_processes" in answered.content


def test_only_get_is_answered(client: Browser) -> None:
    assert client.post("/metrics").status_code == 405


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("::2", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback
