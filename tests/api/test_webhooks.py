"""Webhooks to the shop: a signed POST to the token's callback URL when a process it started
completes, fails, gets stuck or is closed; retried with backoff until a 2xx, for 24 hours."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.utils import timezone

from integration import gateway
from integration.core import lifecycle, relay
from integration.core.trace import lock_process
from integration.models import ProcessStatus, WebhookAttempt, WebhookDelivery
from shop_api import webhooks
from shop_api.auth import IssuedToken
from tests.api.conftest import Shop, issue
from tests.support import flows, processes
from tests.support.waiting import wait_until

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
EVENT_FIELDS = {"event", "process_id", "kind", "client_id", "client_version", "status", "at"}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """The shop's end: answers each POST with the next status in `answers` (then 200)."""

    url: str
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        wait_until(
            lambda: len(self.received) >= count,
            timeout=timeout,
            interval=0.05,
            describe=lambda: f"{len(self.received)} of {count} webhooks arrived",
        )
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(Received(dict(self.headers.items()), body))
            self.send_response(state.answers.pop(0) if state.answers else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/ensemble"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def signed_by(received: Received, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["X-Ensemble-Signature"], expected)


def hooked_shop(receiver: Receiver) -> tuple[Shop, IssuedToken]:
    issued = issue("shop", callback_url=receiver.url)
    return Shop(issued), issued


def move(process_id: UUID | str, to: str) -> None:
    with transaction.atomic():
        process = lock_process(UUID(str(process_id)))
        if to == ProcessStatus.STUCK:
            lifecycle.process_mark_stuck(process=process, idle_seconds=400)
        else:
            lifecycle.process_finish(process=process, status=to)


# --- with real workers and the scheduler ----------------------------------------------------------


@pytest.fixture(scope="module")
def workers_and_scheduler(child_env: dict[str, str]) -> Iterator[None]:
    worker = flows.start_workers(flows.ALL, child_env)
    scheduler = processes.start_scheduler(child_env)
    with processes.running(scheduler, worker):
        yield


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_completion_is_posted_signed_and_retried_after_a_500_until_a_200(
    receiver: Receiver, workers_and_scheduler: None
) -> None:
    shop, issued = hooked_shop(receiver)
    receiver.answers = [500]

    started = shop.post("/api/v1/clients/", ADA).body
    flows.wait_for_status(started["process_id"])
    failed, delivered = receiver.wait_for(2)

    assert failed.body == delivered.body
    assert all(signed_by(received, issued.secret or "") for received in (failed, delivered))
    assert delivered.headers["Content-Type"] == "application/json"
    event = delivered.event
    assert set(event) == EVENT_FIELDS
    assert {key: event[key] for key in EVENT_FIELDS - {"at"}} == {
        "event": "process.completed",
        "process_id": started["process_id"],
        "kind": "client_registration",
        "client_id": started["client_id"],
        "client_version": 1,
        "status": "completed",
    }
    assert datetime.fromisoformat(event["at"]).tzinfo is not None
    delivery = wait_for_delivery(started["process_id"])
    assert (delivery.status, delivery.attempts, delivery.event) == (
        "delivered",
        2,
        "process.completed",
    )
    assert list(delivery.tries.values_list("status_code", flat=True)) == [500, 200]
    assert len(receiver.received) == 2


def wait_for_delivery(process_id: str, timeout: float = 10) -> WebhookDelivery:
    def settled() -> WebhookDelivery | None:
        delivery = WebhookDelivery.objects.get(process_id=process_id)
        return delivery if delivery.status != "pending" else None

    return wait_until(
        settled, timeout=timeout, interval=0.05, describe=lambda: "the delivery never settled"
    )


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_stuck_then_closed_sends_one_event_each(
    receiver: Receiver, workers_and_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, issued = hooked_shop(receiver)
    monkeypatch.setattr(relay, "send_after_commit", lambda message: None)
    process_id = shop.post("/api/v1/clients/", ADA).body["process_id"]
    monkeypatch.undo()

    move(process_id, ProcessStatus.STUCK)
    lifecycle.process_close(process_id=process_id, reason="the shop cancelled", by="staff")
    received = receiver.wait_for(2)

    assert [r.event["event"] for r in received] == ["process.stuck", "process.closed"]
    assert [r.event["status"] for r in received] == ["stuck", "closed"]
    assert all(signed_by(r, issued.secret or "") for r in received)


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_failure_is_posted(
    receiver: Receiver, workers_and_scheduler: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _ = hooked_shop(receiver)
    monkeypatch.setattr(relay, "send_after_commit", lambda message: None)
    process_id = shop.post("/api/v1/clients/", ADA).body["process_id"]
    monkeypatch.undo()

    move(process_id, ProcessStatus.FAILED)

    (received,) = receiver.wait_for(1)
    assert (received.event["event"], received.event["status"]) == ("process.failed", "failed")


# --- the pieces, in this process ------------------------------------------------------------------


def started_process(shop: Shop, email: str = "ada@example.com") -> str:
    return str(shop.post("/api/v1/clients/", {**ADA, "email": email}).body["process_id"])


@pytest.mark.django_db
def test_the_delivery_is_written_with_the_move_and_not_without_it(receiver: Receiver) -> None:
    shop, _ = hooked_shop(receiver)
    process_id = started_process(shop)

    with pytest.raises(RuntimeError), transaction.atomic():
        move(process_id, ProcessStatus.STUCK)
        raise RuntimeError("the move is rolled back")
    assert WebhookDelivery.objects.count() == 0

    move(process_id, ProcessStatus.STUCK)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.status, delivery.attempts) == ("process.stuck", "pending", 0)
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()


@pytest.mark.django_db
def test_no_callback_a_revoked_token_or_staff_get_no_webhook(receiver: Receiver) -> None:
    plain = Shop(issue("no-callback"))
    revoked_shop, _ = hooked_shop(receiver)
    plain_id = started_process(plain)
    revoked_id = started_process(revoked_shop, "grace@example.com")
    staff_id = gateway.client_register(
        **{**ADA, "email": "staff@example.com"}, initiator=gateway.SYSTEM
    ).id
    from shop_api.auth import token_revoke

    token_revoke(name="shop")
    for process_id in (plain_id, revoked_id, staff_id):
        move(process_id, ProcessStatus.COMPLETED)

    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_running_again_sends_nothing(receiver: Receiver) -> None:
    shop, _ = hooked_shop(receiver)
    process_id = started_process(shop)
    move(process_id, ProcessStatus.STUCK)
    with transaction.atomic():
        lifecycle.process_wake(process=lock_process(UUID(process_id)))

    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["process.stuck"]


def pending_delivery(receiver: Receiver, *, age: timedelta = timedelta(0)) -> WebhookDelivery:
    shop, _ = hooked_shop(receiver)
    move(started_process(shop), ProcessStatus.COMPLETED)
    WebhookDelivery.objects.update(created_at=timezone.now() - age)
    return WebhookDelivery.objects.get()


@pytest.mark.django_db
def test_a_failed_attempt_waits_with_exponential_backoff(receiver: Receiver) -> None:
    delivery = pending_delivery(receiver)
    receiver.answers = [500, 503]

    before = timezone.now()
    outcome = webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)
    delivery.refresh_from_db()
    first_wait = (delivery.next_attempt_at - before).total_seconds()  # type: ignore[operator]

    assert (outcome, delivery.status, delivery.attempts) == ("retry scheduled", "pending", 1)
    assert 0.8 <= first_wait <= 1.3
    assert [webhooks.retry_delay(n) / 2 ** (n - 1) for n in (1, 2, 5)] == pytest.approx(
        [1.0, 1.0, 1.0], rel=0.21
    )
    assert 2880 <= webhooks.retry_delay(20) <= 4320  # at most an hour, ±20 %
    assert list(WebhookAttempt.objects.values_list("status_code", "error")) == [(500, "")]


@pytest.mark.django_db
def test_after_24_hours_of_failures_the_delivery_is_failed(receiver: Receiver) -> None:
    delivery = pending_delivery(receiver, age=timedelta(hours=24) - timedelta(milliseconds=500))
    receiver.answers = [500]

    outcome = webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)

    delivery.refresh_from_db()
    assert (outcome, delivery.status, delivery.next_attempt_at) == (
        "failed: out of time",
        "failed",
        None,
    )
    assert webhooks.webhooks_sweep() == 0


@pytest.mark.django_db
def test_an_unreachable_shop_or_a_redirect_is_a_failed_attempt(receiver: Receiver) -> None:
    delivery = pending_delivery(receiver)
    delivery.token.callback_url = f"http://127.0.0.1:{processes.free_port()}/gone"
    delivery.token.save()

    webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)
    delivery.token.callback_url = receiver.url
    delivery.token.save()
    receiver.answers = [302]
    webhooks.webhook_attempt(delivery_id=delivery.id, attempt=2)

    (refused, redirected) = WebhookAttempt.objects.order_by("at")
    assert refused.status_code is None and "Connection refused" in refused.error
    assert (redirected.status_code, redirected.error) == (302, "")
    assert WebhookDelivery.objects.get().status == "pending"


@pytest.mark.django_db
def test_each_attempt_is_made_once_whoever_asks(receiver: Receiver) -> None:
    delivery = pending_delivery(receiver)

    first = webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)
    duplicate = webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)
    late = webhooks.webhook_attempt(delivery_id=delivery.id, attempt=2)

    assert (first, duplicate, late) == (
        "delivered",
        "ignored: attempt taken or delivery settled",
        "ignored: attempt taken or delivery settled",
    )
    assert len(receiver.received) == 1


@pytest.mark.django_db
def test_the_sweeper_sends_what_is_due_once(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = pending_delivery(receiver)
    sent: list[relay.Outgoing] = []

    def send_now(message: relay.Outgoing) -> bool:
        sent.append(message)
        return True

    monkeypatch.setattr(relay, "send_now", send_now)
    assert webhooks.webhooks_sweep() == 0  # the first attempt is the relay's for a while

    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhooks.webhooks_sweep() == 1
    assert webhooks.webhooks_sweep() == 0

    assert [(m.task, m.args, m.queue) for m in sent] == [
        ("integration.deliver_webhook", [str(delivery.id), 1], "integration")
    ]


@pytest.mark.django_db
def test_each_attempt_is_visible_in_the_admin(receiver: Receiver) -> None:
    delivery = pending_delivery(receiver)
    receiver.answers = [500]
    webhooks.webhook_attempt(delivery_id=delivery.id, attempt=1)
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)

    page = client.get(f"/admin/integration/webhookdelivery/{delivery.id}/change/")

    assert page.status_code == 200
    assert "500" in page.content.decode()


@pytest.mark.django_db
def test_the_events_of_one_process_reach_the_shop_in_order(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[relay.Outgoing] = []
    monkeypatch.setattr(relay, "send_after_commit", published.append)
    shop, _ = hooked_shop(receiver)
    process_id = started_process(shop)
    move(process_id, ProcessStatus.STUCK)
    lifecycle.process_close(process_id=UUID(process_id), reason="cancelled", by="staff")
    stuck, closed = WebhookDelivery.objects.order_by("created_at")
    published.clear()

    # When the later event's message arrives first, it waits for the earlier one
    waiting = webhooks.webhook_attempt(delivery_id=closed.id, attempt=1)
    assert waiting == "waiting: an earlier event of this process is still pending"
    assert receiver.received == []
    # and once the earlier one is delivered, the later one is sent at once, in order
    assert webhooks.webhook_attempt(delivery_id=stuck.id, attempt=1) == "delivered"
    assert [(m.args, m.queue) for m in published] == [([str(closed.id), 1], "integration")]
    assert webhooks.webhook_attempt(delivery_id=closed.id, attempt=1) == "delivered"
    assert [r.event["event"] for r in receiver.received] == ["process.stuck", "process.closed"]
