"""`?min_version=` over HTTP: a bad value is a 400, and no component at the version a 503 with
Retry-After — both problem+json; processes carry `client_version`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from integration.orchestrator import lookups
from tests.api.conftest import Shop

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}


@pytest.fixture
def crm_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    def ask(components: list[str], client_id: UUID) -> tuple[dict[str, Any], list[str]]:
        return {}, sorted(components)

    monkeypatch.setattr(lookups, "ask", ask)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", ""])
def test_a_min_version_that_is_not_a_positive_whole_number_is_400(shop: Shop, value: str) -> None:
    client_id = shop.post("/api/v1/clients/", ADA).body["client_id"]

    answer = shop.get(f"/api/v1/clients/{client_id}/?min_version={value}")

    assert (answer.status, answer.content_type) == (400, "application/problem+json")
    assert list(answer.body["errors"]) == ["min_version"]


def test_no_component_at_the_version_is_503_with_retry_after(shop: Shop, crm_silent: None) -> None:
    client_id = shop.post("/api/v1/clients/", ADA).body["client_id"]

    answer = shop.get(f"/api/v1/clients/{client_id}/?min_version=1")

    assert (answer.status, answer.content_type, answer.headers["Retry-After"]) == (
        503,
        "application/problem+json",
        "1",
    )
    assert answer.body["title"] == "Service unavailable"


def test_a_new_process_has_no_client_version_yet(shop: Shop) -> None:
    started = shop.post("/api/v1/clients/", ADA).body

    process = shop.get(f"/api/v1/processes/{started['process_id']}/").body

    assert process["client_version"] is None
