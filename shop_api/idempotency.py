"""Idempotency-Key on the shop API's POST and PATCH (shop-api.md, Conventions).

A key is scoped to token + method + path and claimed by inserting its row: the unique constraint
decides which of two requests goes first, with no check-then-act. The claim commits before the
view runs, so a second request with the key finds it in flight (409) or, once the first answer is
stored on the row, gets that answer again. Answers that are not kept (400, 413, 415, 429, and any
server error) delete the row instead: the key stays free for a corrected retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder
from django.db import Error as DatabaseError
from django.db import IntegrityError, close_old_connections, transaction
from django.utils import timezone

from common.errors import ApplicationError, Conflict, ValidationFailed
from integration.models import IdempotencyRecord

HEADER = "Idempotency-Key"
logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
KEEP_FOR = timedelta(hours=24, minutes=5)  # "at least 24 hours", with room for clocks
# A claim this old was never answered (its web process died): another request may take the key.
ABANDONED_AFTER = timedelta(minutes=5)
NOT_KEPT = frozenset({400, 413, 415, 429})


class KeyInFlight(Conflict):
    """The first request with this key has not been answered yet."""


class KeyReused(ApplicationError):
    status = 422
    title = "Unprocessable content"


@dataclass(frozen=True)
class Claim:
    record_id: int


@dataclass(frozen=True)
class SavedAnswer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    token_id: int
    key: str
    method: str
    path: str

    def records(self) -> Any:
        return IdempotencyRecord.objects.filter(
            token_id=self.token_id, key=self.key, method=self.method, path=self.path
        )


def key_validate(raw: str) -> str:
    """1 to 255 printable ASCII characters (what a header can carry and a column can hold)."""
    if not 0 < len(raw) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in raw):
        raise ValidationFailed(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            errors={HEADER: [f"1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return raw


def body_fingerprint(body: Any) -> str:
    """Bodies are compared as parsed JSON: key order and spacing do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_claim(*, scope: Scope, fingerprint: str, client_id: UUID | None) -> Claim | SavedAnswer:
    """Claim the key for this request, or return the answer it got the first time."""
    for _ in range(3):  # tries again only after removing an expired or abandoned claim
        now = timezone.now()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    token_id=scope.token_id,
                    key=scope.key,
                    method=scope.method,
                    path=scope.path,
                    request_hash=fingerprint,
                    client_id=client_id,
                    expires_at=now + KEEP_FOR,
                )
            return Claim(record.pk)
        except IntegrityError:
            pass
        except DatabaseError:
            # The database went away at the claim: it may have committed it all the same (a
            # COMMIT whose answer was lost). This claim is known by its expiry to the
            # microsecond: free it once the database is back, unless it was answered.
            mine = scope.records().filter(expires_at=now + KEEP_FOR, in_flight=True)
            settle_soon(partial(_forget, mine))
            raise
        existing = scope.records().first()
        if existing is None:
            continue  # pruned in between
        if existing.expires_at <= now or _abandoned(existing, now):
            _remove(existing)
            continue
        if existing.request_hash != fingerprint:
            raise KeyReused(f"This {HEADER} was used with a different body.")
        if existing.in_flight:
            if settle_pending():
                continue  # a request of this process was answered while the database was away
            raise KeyInFlight(f"A request with this {HEADER} is still being answered.")
        return SavedAnswer(
            status=existing.response_status or 200,
            body=existing.response_body,
            headers=dict(existing.response_headers),
        )
    raise KeyInFlight(f"A request with this {HEADER} is still being answered.")


def _forget(rows: Any) -> None:
    rows.delete()


def _abandoned(record: IdempotencyRecord, now: datetime) -> bool:
    return record.in_flight and record.created_at <= now - ABANDONED_AFTER


def _remove(record: IdempotencyRecord) -> None:
    """Delete this very row (not one a concurrent request has claimed since)."""
    IdempotencyRecord.objects.filter(pk=record.pk, created_at=record.created_at).delete()


def answer_store(
    *, claim: Claim, status: int, body: Any, headers: dict[str, str], client_id: UUID | None
) -> bool:
    """Keep the answer for replays; answers that are not kept free the key. True when kept."""
    if status in NOT_KEPT or status >= 500:
        key_release(claim=claim)
        return False
    stored = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(
        in_flight=False,
        response_status=status,
        response_body=stored,
        response_headers=headers,
        client_id=client_id,
    )
    return True


# --- settling when the database is away ---------------------------------------------------------

SETTLE_RETRY_EVERY = 0.2  # seconds
SETTLE_RETRY_FOR = 120.0  # then the claim is left for ABANDONED_AFTER

_unsettled: list[tuple[float, Callable[[], None]]] = []
_unsettled_lock = threading.Lock()
_settling = threading.Lock()  # one run of the pending settles at a time
_settled = 0  # how many pending settles went through (a request waiting on the lock sees it)
_retrier_started = threading.Event()


def settle_soon(settle: Callable[[], None]) -> None:
    """Record how a request with a key ended — now, or, when the database is away (the request
    was answered 503, or its answer could not be kept), as soon as it is back: a retry of the
    same key must not meet a claim that nobody will ever settle."""
    try:
        settle()
    except DatabaseError:
        logger.warning("an Idempotency-Key is settled when the database is back")
        with _unsettled_lock:
            _unsettled.append((time.monotonic() + SETTLE_RETRY_FOR, settle))
        if not _retrier_started.is_set():
            _retrier_started.set()
            threading.Thread(target=_settle_later, name="idempotency-settle", daemon=True).start()


def settle_pending() -> bool:
    """Try every settle still pending in this process once (one caller at a time: a request
    that meets an in-flight key waits for the retrier's attempt, then tries itself). True when
    something was pending, or was settled while this caller waited."""
    global _settled
    before = _settled
    with _settling:
        with _unsettled_lock:
            pending = list(_unsettled)
            _unsettled.clear()
        kept = []
        for give_up_at, settle in pending:
            try:
                settle()
                _settled += 1
            except DatabaseError:
                if time.monotonic() < give_up_at:
                    kept.append((give_up_at, settle))
        with _unsettled_lock:
            _unsettled.extend(kept)
    return bool(pending) or _settled != before


def _settle_later() -> None:
    while True:
        time.sleep(SETTLE_RETRY_EVERY)  # paces a background thread's retries
        if _unsettled:
            settle_pending()
            close_old_connections()


def key_release(*, claim: Claim) -> None:
    IdempotencyRecord.objects.filter(pk=claim.record_id).delete()


def forget_client(*, client_id: UUID) -> int:
    """Erasure: drop every stored answer about this client."""
    deleted, _ = IdempotencyRecord.objects.filter(client_id=client_id).delete()
    return deleted


def client_scrubbed(sender: Any, client_id: UUID, **kwargs: Any) -> dict[str, int]:
    """Receiver of the core's `client_scrubbed`: the erased client's saved answers go."""
    return {"idempotency_records": forget_client(client_id=client_id)}


def records_prune(*, now: datetime | None = None) -> int:
    """Drop keys past their 24 hours (the scheduler's job)."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
