"""The shop API, endpoint by endpoint, as shop-api.md writes it, with real workers carrying the
processes out. Every test runs in each integration mode."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from integration import actions
from integration.core import relay
from integration.models import IdempotencyRecord, Process
from marketing.models import AudienceMember
from tests.api.conftest import MODES, Answer, Shop
from tests.support import flows

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ADA = {
    "email": "  Ada@EXAMPLE.com ",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+44 20 7946 0000",
    "company": "Analytical Engines",
    "marketing_consent": True,
}
ORDER = {"order_ref": "SHOP-10023", "total": "59.90", "currency": "EUR"}
SOURCE = {"orchestration": "orchestrator", "choreography": "sales-replica"}
COMPONENTS = {"crm", "sales", "marketing", "correspondence", "integration"}
TRACE_KINDS = {"command", "event", "delivery", "step", "retry", "failure", "action"}
UNKNOWN = "3f1b8f2f-4b11-4d1e-9d2a-6f0c9a571f7e"
DETAIL_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "marketing_consent",
    "registered_at",
    "communications",
    "purchases",
    "served_by",
}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, workers: Any) -> str:
    actions.mode_switch(mode=request.param)
    return str(request.param)


def finished(answer: Answer, status: str = "completed") -> Process:
    return flows.wait_for_status(answer.body["process_id"], statuses=(status,), timeout=60)


def assert_started(answer: Answer, *, kind: str, mode: str, status: int = 202) -> None:
    process_id, client_id = answer.body["process_id"], answer.body["client_id"]
    assert (answer.status, answer.content_type) == (status, "application/json")
    assert answer.headers["Location"] == f"/api/v1/processes/{process_id}/"
    assert answer.body == {
        "process_id": process_id,
        "client_id": client_id,
        "kind": kind,
        "status": answer.body["status"],
        "mode": mode,
        "links": {
            "process": f"/api/v1/processes/{process_id}/",
            "client": f"/api/v1/clients/{client_id}/",
        },
    }


def aware(timestamp: str) -> datetime:
    parsed = datetime.fromisoformat(timestamp)
    assert parsed.tzinfo is not None, timestamp
    return parsed


def in_audiences(client_id: str) -> int:
    return AudienceMember.objects.filter(client_id=client_id, left_at__isnull=True).count()


def registered(shop: Shop, **changes: Any) -> Answer:
    answer = shop.post("/api/v1/clients/", {**ADA, **changes})
    finished(answer)
    return answer


# --- POST /api/v1/clients/ ----------------------------------------------------------------------


def test_registration_answers_202_at_once_and_the_process_completes(shop: Shop, mode: str) -> None:
    answer = shop.post("/api/v1/clients/", ADA)

    assert_started(answer, kind="client_registration", mode=mode)
    assert answer.body["status"] == "running"
    process = finished(answer)
    assert (str(process.client_id), process.initiator_token_id) == (
        answer.body["client_id"],
        shop.issued.token.pk,  # type: ignore[union-attr]
    )


def test_an_email_taken_or_in_flight_is_409_naming_the_client(shop: Shop, mode: str) -> None:
    first = shop.post("/api/v1/clients/", ADA)
    in_flight = shop.post("/api/v1/clients/", {**ADA, "email": "Ada@example.com"})
    finished(first)
    taken = shop.post("/api/v1/clients/", {**ADA, "email": "Ada@Example.Com"})

    for answer in (in_flight, taken):
        assert (answer.status, answer.content_type) == (409, "application/problem+json")
        assert answer.body == {
            "type": "https://ensemble.invalid/problems/conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "This email already belongs to a client.",
            "errors": {"email": ["Already registered."]},
            "client_id": first.body["client_id"],
        }
    assert Process.objects.filter(kind="client_registration").count() == 1


# --- GET /api/v1/processes/<id>/ ------------------------------------------------------------------


def test_a_process_shows_its_trace_in_seq_order(shop: Shop, mode: str) -> None:
    started = registered(shop)

    answer = shop.get(started.body["links"]["process"])

    body = answer.body
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert set(body) == {
        "id",
        "kind",
        "mode",
        "status",
        "correlation_id",
        "client_id",
        "client_version",
        "started_at",
        "finished_at",
        "trace",
    }
    assert body["client_version"] == 1  # crm created the client: its first version
    assert (body["id"], body["correlation_id"], body["client_id"]) == (
        started.body["process_id"],
        started.body["process_id"],
        started.body["client_id"],
    )
    assert (body["kind"], body["mode"], body["status"]) == (
        "client_registration",
        mode,
        "completed",
    )
    assert aware(body["finished_at"]) >= aware(body["started_at"])
    seqs = [entry["seq"] for entry in body["trace"]]
    assert seqs == sorted(set(seqs)) and len(seqs) >= 6
    for entry in body["trace"]:
        assert set(entry) == {
            "seq",
            "at",
            "component",
            "name",
            "kind",
            "status",
            "attempt",
            "detail",
        }
        assert entry["component"] in COMPONENTS and entry["kind"] in TRACE_KINDS
        assert entry["detail"] is None or isinstance(entry["detail"], dict)
        aware(entry["at"])
    assert "Ada" not in str(body["trace"])  # ids and names, never personal data


def test_an_unknown_process_is_404(shop: Shop, mode: str) -> None:
    answer = shop.get(f"/api/v1/processes/{UNKNOWN}/")

    assert (answer.status, answer.body["detail"]) == (404, "No process with this id.")


# --- GET /api/v1/clients/<id>/ --------------------------------------------------------------------


def test_details_give_profile_communications_and_purchases_newest_first(
    shop: Shop, mode: str
) -> None:
    client_id = registered(shop).body["client_id"]
    for order_ref, total in (("SHOP-1", "10.00"), ("SHOP-2", "20.50")):
        bought = shop.post(
            f"/api/v1/clients/{client_id}/purchases/",
            {**ORDER, "order_ref": order_ref, "total": total},
        )
        finished(bought)

    answer = shop.get(f"/api/v1/clients/{client_id}/")

    body = answer.body
    assert (answer.status, set(body)) == (200, DETAIL_FIELDS)
    assert {
        key: body[key] for key in ("id", "email", "first_name", "last_name", "phone", "company")
    } == {
        "id": client_id,
        "email": "Ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "company": "Analytical Engines",
    }
    aware(body["registered_at"])
    assert [p["order_ref"] for p in body["purchases"]] == ["SHOP-2", "SHOP-1"]
    assert body["purchases"][0]["total"] == "20.50" and body["purchases"][0]["currency"] == "EUR"
    aware(body["purchases"][0]["purchased_at"])
    subjects = [c["subject"] for c in body["communications"]]
    assert len(subjects) == 3 and subjects[-1] == "Welcome to Ensemble, Ada"
    occurred = [aware(c["occurred_at"]) for c in body["communications"]]
    assert occurred == sorted(occurred, reverse=True)
    assert {c["channel"] for c in body["communications"]} == {"email"}
    served = body["served_by"]
    assert (served["mode"], served["source"], served["unavailable"]) == (mode, SOURCE[mode], [])


def test_an_unknown_client_is_404_on_every_client_endpoint(shop: Shop, mode: str) -> None:
    base = f"/api/v1/clients/{UNKNOWN}/"
    answers = [
        shop.get(base),
        shop.patch(base, {"first_name": "X"}),
        shop.post(base + "purchases/", ORDER),
        shop.post(base + "erasure/"),
    ]

    for answer in answers:
        assert (answer.status, answer.content_type) == (404, "application/problem+json")
        assert answer.body["detail"] == "No client with this id."
    assert Process.objects.count() == 0


# --- GET /api/v1/clients/?email= ------------------------------------------------------------------


def test_find_by_email_after_normalisation_paginated(shop: Shop, mode: str) -> None:
    client_id = registered(shop).body["client_id"]

    found = shop.get("/api/v1/clients/?email=%20Ada@EXAMPLE.COM%20")
    other_case = shop.get("/api/v1/clients/?email=ada@example.com")

    assert (found.status, found.body) == (
        200,
        {
            "count": 1,
            "next": None,
            "previous": None,
            "results": [
                {
                    "id": client_id,
                    "email": "Ada@example.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                }
            ],
        },
    )
    assert other_case.body["count"] == 0  # the local part keeps its case


@pytest.mark.parametrize("query", ["", "?email=", "?email=%20%20", "?q=ada"])
def test_find_without_an_email_is_400(shop: Shop, mode: str, query: str) -> None:
    answer = shop.get(f"/api/v1/clients/{query}")

    assert (answer.status, answer.content_type) == (400, "application/problem+json")
    assert list(answer.body["errors"]) == ["email"]


# --- PATCH /api/v1/clients/<id>/ ------------------------------------------------------------------


def test_update_changes_the_client_and_withdrawn_consent_leaves_the_audience(
    shop: Shop, mode: str
) -> None:
    client_id = registered(shop).body["client_id"]
    assert in_audiences(client_id) == 1

    answer = shop.patch(
        f"/api/v1/clients/{client_id}/", {"phone": "+33 1 00", "marketing_consent": False}
    )

    assert_started(answer, kind="client_update", mode=mode)
    assert answer.body["client_id"] == client_id
    finished(answer)
    details = shop.get(f"/api/v1/clients/{client_id}/").body
    assert (details["phone"], details["marketing_consent"], details["company"]) == (
        "+33 1 00",
        False,
        "Analytical Engines",
    )
    assert in_audiences(client_id) == 0


def test_update_to_an_email_taken_is_409_naming_its_owner(shop: Shop, mode: str) -> None:
    ada = registered(shop).body["client_id"]
    grace = registered(shop, email="grace@example.com").body["client_id"]

    answer = shop.patch(f"/api/v1/clients/{grace}/", {"email": " Ada@EXAMPLE.com"})

    assert (answer.status, answer.body["client_id"]) == (409, ada)
    assert Process.objects.filter(kind="client_update").count() == 0


def test_an_update_with_nothing_to_change_is_400(shop: Shop, mode: str) -> None:
    client_id = registered(shop).body["client_id"]

    answer = shop.patch(f"/api/v1/clients/{client_id}/", {})

    assert (answer.status, answer.body["errors"]) == (
        400,
        {"non_field_errors": ["Send at least one field."]},
    )


# --- POST /api/v1/clients/<id>/purchases/ ---------------------------------------------------------


def test_a_purchase_starts_and_its_order_ref_again_returns_the_original(
    shop: Shop, mode: str
) -> None:
    client_id = registered(shop).body["client_id"]
    path = f"/api/v1/clients/{client_id}/purchases/"

    first = shop.post(path, {**ORDER, "purchased_at": "2025-03-01T10:00:00+01:00"})
    before_done = shop.post(path, ORDER)
    finished(first)
    after_done = shop.post(path, {**ORDER, "total": "1.00"})

    assert_started(first, kind="purchase", mode=mode)
    for again in (before_done, after_done):
        assert_started(again, kind="purchase", mode=mode, status=200)
        assert again.body["process_id"] == first.body["process_id"]
    assert after_done.body["status"] == "completed"
    assert Process.objects.filter(kind="purchase").count() == 1
    purchases = shop.get(f"/api/v1/clients/{client_id}/").body["purchases"]
    assert [(p["order_ref"], p["total"]) for p in purchases] == [("SHOP-10023", "59.90")]
    assert aware(purchases[0]["purchased_at"]) == aware("2025-03-01T09:00:00+00:00")


# --- POST /api/v1/clients/<id>/erasure/ -----------------------------------------------------------


def test_erasure_then_the_client_is_404_everywhere_and_the_email_is_free(
    shop: Shop, mode: str
) -> None:
    client_id = registered(shop).body["client_id"]
    shop.patch(f"/api/v1/clients/{client_id}/", {"company": "AE"}, key="remembered")
    base = f"/api/v1/clients/{client_id}/"

    erasure = shop.post(base + "erasure/", key="erase")

    assert_started(erasure, kind="client_erasure", mode=mode)
    finished(erasure)
    assert shop.get(base).status == 404
    assert shop.get("/api/v1/clients/?email=Ada@example.com").body["count"] == 0
    assert shop.post(base + "erasure/").status == 404  # erasing an erased client
    assert shop.patch(base, {"first_name": "X"}).status == 404
    assert shop.post(base + "purchases/", ORDER).status == 404
    assert IdempotencyRecord.objects.filter(client_id=client_id).count() == 0
    assert shop.get(erasure.body["links"]["process"]).body["status"] == "completed"
    again = shop.post("/api/v1/clients/", ADA)
    assert again.status == 202 and again.body["client_id"] != client_id


def test_a_client_not_yet_known_to_the_answering_component_is_404(
    shop: Shop, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a registration whose first message never left (no scheduler runs to resend it)
    monkeypatch.setattr(relay, "send_after_commit", lambda message: None)
    started = shop.post("/api/v1/clients/", ADA)
    monkeypatch.undo()

    answer = shop.get(started.body["links"]["client"])

    assert (answer.status, answer.body["detail"]) == (404, "No client with this id.")


def test_a_shop_reads_its_own_write_at_the_version_its_process_gives(shop: Shop, mode: str) -> None:
    # given a registered client, then a change whose process has completed
    client_id = registered(shop).body["client_id"]
    changed = shop.patch(f"/api/v1/clients/{client_id}/", {"company": "Difference Engines"})
    finished(changed)
    version = shop.get(changed.body["links"]["process"]).body["client_version"]

    # when the shop asks for the client at that version
    answer = shop.get(f"/api/v1/clients/{client_id}/?min_version={version}")

    # then the answer reflects the change, at that version or newer
    assert answer.status == 200
    assert answer.body["company"] == "Difference Engines"
    assert answer.body["served_by"]["version"] >= version > 1
