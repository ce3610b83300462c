"""Webhooks to the shop (shop-api.md): when a process a token started completes, fails, gets stuck
or is closed, the token's callback URL gets a signed POST.

The delivery row is written in the transaction that moved the process (a status listener, wired
in IntegrationConfig.ready) and its first attempt published after commit on the `integration`
queue. Every attempt is recorded. An attempt that does not get a 2xx sets `next_attempt_at` with
exponential backoff; the scheduler sends what is due (never Celery countdown/ETA), for up to 24
hours after the event, then the delivery is marked failed.

Attempts are numbered: a message carries the attempt it is for, and claims the row with a
conditional UPDATE on the attempt before it, so duplicate messages and two schedulers never POST
the same attempt twice. The events of one process reach the shop in the order they happened
(stuck, then completed): an event waits while an earlier one of its process is still pending, and
goes out as soon as that one is delivered or given up.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from integration.core import relay
from integration.models import (
    ApiToken,
    Process,
    ProcessStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookStatus,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "integration.deliver_webhook"
QUEUE = "integration"
SIGNATURE_HEADER = "X-Ensemble-Signature"
EVENTS = {
    ProcessStatus.COMPLETED.value: "process.completed",
    ProcessStatus.FAILED.value: "process.failed",
    ProcessStatus.STUCK.value: "process.stuck",
    ProcessStatus.CLOSED.value: "process.closed",
}
TIMEOUT = 5.0  # seconds an attempt waits for the shop
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY = 1.0  # seconds; doubles each attempt
LONGEST_RETRY = 3600.0
# How long a published attempt owns its row: past this, the sweeper assumes the message or the
# worker was lost and sends the next attempt.
LEASE = timedelta(seconds=TIMEOUT + 25)
# An event behind an earlier pending one of its process looks again after this long.
WAIT_FOR_EARLIER = timedelta(seconds=1)


# --- the event: inside the transaction that moved the process -------------------------------------


def process_status_changed(sender: Any, process: Process, status: str, **kwargs: Any) -> None:
    """Receiver of the core's `process_status_changed`: queue a webhook for the process's shop."""
    event = EVENTS.get(str(status))
    if event is None or process.initiator_token_id is None:
        return
    has_callback = (
        ApiToken.objects.filter(pk=process.initiator_token_id, revoked_at__isnull=True)
        .exclude(callback_url="")
        .exists()
    )
    if not has_callback:
        return
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        token_id=process.initiator_token_id,
        process=process,
        event=event,
        payload={
            "event": event,
            "process_id": str(process.id),
            "kind": process.kind,
            "client_id": str(process.client_id),
            "client_version": process.client_version,
            "status": status,
            "at": now.isoformat(),
        },
        next_attempt_at=now + LEASE,
    )
    relay.send_after_commit(_outgoing(delivery.id, process.id, attempt=1, on_failure=True))


def _outgoing(
    delivery_id: UUID, process_id: UUID, *, attempt: int, on_failure: bool = False
) -> relay.Outgoing:
    return relay.Outgoing(
        task=DELIVER_TASK,
        args=[str(delivery_id), attempt],
        queue=QUEUE,
        correlation_id=str(process_id),
        on_failure=(lambda: _due_now(delivery_id, attempt)) if on_failure else None,
    )


def _due_now(delivery_id: UUID, attempt: int) -> None:
    """The broker refused the message: the sweeper sends it as soon as the broker is back."""
    WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookStatus.PENDING, attempts=attempt - 1
    ).update(next_attempt_at=timezone.now())


# --- an attempt: in the worker --------------------------------------------------------------------


@shared_task(name=DELIVER_TASK, ignore_result=True)
def deliver_webhook(delivery_id: str, attempt: int) -> str:
    return webhook_attempt(delivery_id=UUID(delivery_id), attempt=attempt)


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_attempt(*, delivery_id: UUID, attempt: int) -> str:
    """POST one attempt of a delivery, record it, and settle the delivery or schedule the next."""
    mine = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookStatus.PENDING, attempts=attempt - 1
    )
    if _behind_an_earlier_event(delivery_id):
        mine.update(next_attempt_at=timezone.now() + WAIT_FOR_EARLIER)
        return "waiting: an earlier event of this process is still pending"
    claimed = mine.update(attempts=attempt, next_attempt_at=timezone.now() + LEASE)
    if not claimed:
        return "ignored: attempt taken or delivery settled"
    delivery = WebhookDelivery.objects.select_related("token").get(pk=delivery_id)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Ensemble-Webhooks/1",
        SIGNATURE_HEADER: signature(body, delivery.token.webhook_secret),
        "X-Ensemble-Event": delivery.event,
        "X-Ensemble-Delivery": str(delivery.id),
    }
    started = time.monotonic()
    status_code, error = _post(delivery.token.callback_url, body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery, status_code=status_code, error=error, duration_ms=duration_ms
        )
        delivered = status_code is not None and 200 <= status_code < 300
        return _settle(delivery, attempt=attempt, delivered=delivered)


def _settle(delivery: WebhookDelivery, *, attempt: int, delivered: bool) -> str:
    now = timezone.now()
    mine = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookStatus.PENDING, attempts=attempt
    )
    if delivered:
        mine.update(status=WebhookStatus.DELIVERED, delivered_at=now, next_attempt_at=None)
        _release_next(delivery)
        return "delivered"
    retry_at = now + timedelta(seconds=retry_delay(attempt))
    if retry_at > delivery.created_at + GIVE_UP_AFTER:
        mine.update(status=WebhookStatus.FAILED, next_attempt_at=None)
        _release_next(delivery)
        return "failed: out of time"
    mine.update(next_attempt_at=retry_at)
    return "retry scheduled"


def _same_process(delivery_id: UUID) -> Any:
    """The pending deliveries of the same process to the same shop as this one."""
    row = WebhookDelivery.objects.filter(pk=delivery_id).values("process_id", "token_id").get()
    return WebhookDelivery.objects.filter(
        process_id=row["process_id"], token_id=row["token_id"], status=WebhookStatus.PENDING
    )


def _behind_an_earlier_event(delivery_id: UUID) -> bool:
    created_at = WebhookDelivery.objects.values_list("created_at", flat=True).get(pk=delivery_id)
    return _same_process(delivery_id).filter(created_at__lt=created_at).exists()


def _release_next(delivery: WebhookDelivery) -> None:
    """This event is settled: the next one of its process goes out now, not at its next sweep."""
    following = (
        _same_process(delivery.pk)
        .filter(created_at__gt=delivery.created_at)
        .order_by("created_at")
        .values_list("id", "attempts")
        .first()
    )
    if following is not None:
        next_id, attempts = following
        relay.send_after_commit(_outgoing(next_id, delivery.process_id, attempt=attempts + 1))


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after `attempt`: 1, 2, 4 … up to an hour, ±20 % jitter."""
    base = min(LONGEST_RETRY, FIRST_RETRY * 2 ** (attempt - 1))
    return base * random.uniform(0.8, 1.2)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not a 2xx: the attempt fails and is retried, the body never re-sent."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """(HTTP status, "") or (None, what went wrong)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            response.read(65536)
            return int(response.status), ""
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code), ""
    except (OSError, ValueError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"[:500]


# --- the sweeper: in the scheduler ----------------------------------------------------------------


def webhooks_sweep(*, limit: int = 100, now: datetime | None = None) -> int:
    """Send the next attempt of every delivery that is due; returns how many were sent."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(status=WebhookStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", "process_id", "attempts", "next_attempt_at")[:limit]
    )
    sent = 0
    for delivery_id, process_id, attempts, due_at in due:
        taken = WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookStatus.PENDING, attempts=attempts, next_attempt_at=due_at
        ).update(next_attempt_at=now + LEASE)
        if taken and relay.send_now(_outgoing(delivery_id, process_id, attempt=attempts + 1)):
            sent += 1
    return sent
