"""Idempotency-Key on every POST and PATCH (shop-api.md, Conventions)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from integration import gateway
from integration.models import IdempotencyRecord, Process, RegisteredEmail
from shop_api import idempotency, jobs
from tests.api.conftest import Answer, Shop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
ORDER = {"order_ref": "SHOP-1", "total": "59.90", "currency": "EUR"}


def register(shop: Shop, body: Any = None, **options: Any) -> Answer:
    return shop.post("/api/v1/clients/", ADA if body is None else body, **options)


@pytest.fixture
def client_id(shop: Shop) -> str:
    return str(register(shop).body["client_id"])


def test_same_key_and_body_replays_the_first_answer_and_works_once(shop: Shop) -> None:
    first = register(shop, key="k-1")
    again = register(shop, key="k-1")

    assert first.status == 202
    assert (again.status, again.body, again.headers["Location"]) == (
        202,
        first.body,
        first.headers["Location"],
    )
    assert again.content_type == "application/json"
    assert (Process.objects.count(), RegisteredEmail.objects.count()) == (1, 1)


def test_bodies_are_compared_as_parsed_json(shop: Shop) -> None:
    first = register(
        shop, key="k", raw=b'{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace"}'
    )
    again = register(
        shop,
        key="k",
        raw=b'{ "last_name" : "Lovelace",\n "first_name": "Ada", "email": "ada@example.com" }',
    )

    assert (again.status, again.body) == (202, first.body)
    assert Process.objects.count() == 1


def test_same_key_with_a_different_body_is_422_and_does_nothing(shop: Shop) -> None:
    register(shop, key="k")

    answer = register(shop, {**ADA, "first_name": "Augusta"}, key="k")

    assert (answer.status, answer.content_type) == (422, "application/problem+json")
    assert answer.body == {
        "type": "https://ensemble.invalid/problems/unprocessable-content",
        "title": "Unprocessable content",
        "status": 422,
        "detail": "This Idempotency-Key was used with a different body.",
        "errors": {},
    }
    assert Process.objects.count() == 1


def test_a_key_whose_first_request_is_unanswered_is_409(shop: Shop) -> None:
    claim = idempotency.key_claim(
        scope=idempotency.Scope(shop.issued.token.pk, "k", "POST", "/api/v1/clients/"),  # type: ignore[union-attr]
        fingerprint=idempotency.body_fingerprint(ADA),
        client_id=None,
    )
    assert isinstance(claim, idempotency.Claim)

    answer = register(shop, key="k")

    assert (answer.status, answer.body["title"], answer.body["detail"]) == (
        409,
        "Conflict",
        "A request with this Idempotency-Key is still being answered.",
    )
    assert "client_id" not in answer.body
    assert Process.objects.count() == 0
    assert IdempotencyRecord.objects.get().in_flight is True  # the 409 is not kept


def test_a_claim_abandoned_for_minutes_is_taken_over(shop: Shop) -> None:
    register(shop, key="k")
    IdempotencyRecord.objects.update(
        in_flight=True, created_at=timezone.now() - idempotency.ABANDONED_AFTER
    )
    Process.objects.all().delete()
    RegisteredEmail.objects.all().delete()

    answer = register(shop, key="k")

    assert answer.status == 202
    assert IdempotencyRecord.objects.get().in_flight is False


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        ({"raw": b"{nope"}, 400),
        ({"body": {**ADA, "email": "nope"}}, 400),
        ({"body": ADA, "content_type": "text/plain"}, 415),
        ({"raw": b'{"a": "' + b"x" * (1024 * 1024) + b'"}'}, 413),
    ],
)
def test_400_413_and_415_are_not_kept_the_key_stays_free(
    shop: Shop, bad: dict[str, Any], status: int
) -> None:
    refused = shop.post("/api/v1/clients/", key="k", **bad)
    corrected = register(shop, key="k")

    assert (refused.status, corrected.status) == (status, 202)
    assert Process.objects.count() == 1


def test_429_is_not_kept(shop: Shop, settings: Any) -> None:
    settings.API_RATE_LIMIT = "1/minute"
    shop.get("/api/v1/clients/?email=x@example.com")

    limited = register(shop, key="k")
    settings.API_RATE_LIMIT = None
    retried = register(shop, key="k")

    assert (limited.status, retried.status) == (429, 202)


def test_answers_other_than_those_are_kept(shop: Shop, client_id: str) -> None:
    taken = register(shop, key="conflict")
    unknown = f"/api/v1/clients/{'0' * 8}-0000-4000-8000-{'0' * 12}/"
    missing = shop.patch(unknown, {"first_name": "X"}, key="missing")

    assert (taken.status, taken.body["client_id"]) == (409, client_id)
    assert register(shop, key="conflict").body == taken.body
    assert missing.status == 404
    assert shop.patch(unknown, {"first_name": "X"}, key="missing").body == missing.body
    assert IdempotencyRecord.objects.filter(in_flight=False).count() == 2


def test_patch_is_idempotent(shop: Shop, client_id: str) -> None:
    path = f"/api/v1/clients/{client_id}/"
    first = shop.patch(path, {"phone": "+44 1"}, key="p")
    again = shop.patch(path, {"phone": "+44 1"}, key="p")

    assert (first.status, again.status, again.body) == (202, 202, first.body)
    assert Process.objects.filter(kind="client_update").count() == 1


def test_a_purchase_and_an_erasure_are_idempotent(shop: Shop, client_id: str) -> None:
    purchases = f"/api/v1/clients/{client_id}/purchases/"
    first = shop.post(purchases, ORDER, key="buy")
    again = shop.post(purchases, ORDER, key="buy")
    erased = shop.post(f"/api/v1/clients/{client_id}/erasure/", key="erase")
    erased_again = shop.post(f"/api/v1/clients/{client_id}/erasure/", key="erase")

    assert (first.status, again.status, again.body) == (202, 202, first.body)
    assert (erased.status, erased_again.status, erased_again.body) == (202, 202, erased.body)
    assert Process.objects.filter(kind="purchase").count() == 1
    assert Process.objects.filter(kind="client_erasure").count() == 1


def test_the_key_is_scoped_to_token_method_and_path(
    shop: Shop, other_shop: Shop, client_id: str
) -> None:
    other = register(other_shop, {**ADA, "email": "grace@example.com"}, key="k")
    patched = shop.patch(f"/api/v1/clients/{client_id}/", {"company": "AE"}, key="k")
    bought = shop.post(f"/api/v1/clients/{client_id}/purchases/", ORDER, key="k")
    register(shop, key="k")  # this token's POST /clients/ with the key: a replay of its own

    assert (other.status, patched.status, bought.status) == (202, 202, 202)
    assert IdempotencyRecord.objects.count() == 4


@pytest.mark.parametrize(
    ("key", "status"), [("k" * 255, 202), ("k" * 256, 400), ("", 400), ("ké", 400)]
)
def test_a_key_is_1_to_255_printable_characters(shop: Shop, key: str, status: int) -> None:
    answer = register(shop, key=key)

    assert answer.status == status
    if status == 400:
        assert answer.body["errors"] == {
            "Idempotency-Key": ["1 to 255 printable ASCII characters."]
        }
        assert IdempotencyRecord.objects.count() == 0


def test_keys_are_kept_24_hours_then_pruned(shop: Shop) -> None:
    register(shop, key="old")
    record = IdempotencyRecord.objects.get()
    assert record.expires_at - record.created_at >= timedelta(hours=24)
    assert jobs.prune_idempotency_keys() == 0

    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert jobs.prune_idempotency_keys() == 1
    assert IdempotencyRecord.objects.count() == 0


def test_an_expired_key_not_yet_pruned_is_free(shop: Shop) -> None:
    register(shop, key="old")
    IdempotencyRecord.objects.update(expires_at=timezone.now())

    answer = register(shop, {**ADA, "email": "grace@example.com"}, key="old")

    assert answer.status == 202
    assert Process.objects.count() == 2


def test_forget_client_drops_the_clients_records(shop: Shop, client_id: str) -> None:
    register(shop, {**ADA, "email": "grace@example.com"}, key="someone-else")
    shop.patch(f"/api/v1/clients/{client_id}/", {"company": "AE"}, key="k1")
    shop.post(f"/api/v1/clients/{client_id}/purchases/", ORDER, key="k2")
    register(shop, key="k3")  # the 409 that names the client

    assert idempotency.forget_client(client_id=UUID(client_id)) == 3
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_one_works_the_other_is_409(shop: Shop, monkeypatch: Any) -> None:
    entered, release = threading.Event(), threading.Event()
    real_register = gateway.client_register

    def slow_register(**kwargs: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real_register(**kwargs)

    monkeypatch.setattr(gateway, "client_register", slow_register)
    answers: list[Answer] = []

    def first_request() -> None:
        try:
            answers.append(register(shop, key="k"))
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    assert entered.wait(10)
    second = register(shop, key="k")
    release.set()
    thread.join(10)
    third = register(shop, key="k")

    assert second.status == 409
    assert (answers[0].status, third.status, third.body) == (202, 202, answers[0].body)
    assert Process.objects.count() == 1


def test_a_key_that_cannot_be_settled_now_is_settled_when_the_database_is_back() -> None:
    # given the database refuses the first time a request's key is settled
    attempts: list[str] = []

    def settle() -> None:
        attempts.append("tried")
        if len(attempts) == 1:
            raise OperationalError("the database is away")

    # when the request ends
    idempotency.settle_soon(settle)

    # then it is tried again in the background until it goes through
    wait_until(lambda: len(attempts) == 2, timeout=10)
