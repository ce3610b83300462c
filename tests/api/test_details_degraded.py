"""GET /api/v1/clients/<id>/ when crm does not answer (orchestration: shop-api.md says the
answer is still 200 within LOOKUP_TIMEOUT plus half a second, crm's fields null, and
`served_by.unavailable` names it). The lookup deadline is orchestration's alone, so this runs in
that mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from integration import actions
from tests.api.conftest import Shop
from tests.support import flows, processes
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}


@pytest.fixture(scope="module")
def crm_down(child_env: dict[str, str]) -> Iterator[processes.Process]:
    """Workers for every component but crm."""
    worker = flows.start_workers("sales,marketing,correspondence,integration", child_env)
    yield worker
    worker.stop()


def test_crm_not_answering_leaves_its_fields_null_and_names_it(
    shop: Shop, crm_down: Any, settings: Any
) -> None:
    actions.mode_switch(mode="orchestration")
    client_id = shop.post("/api/v1/clients/", ADA).body["client_id"]
    # sales has answered once: a worker's first lookup also opens its connections, which on a
    # busy machine can take longer than the half second below
    settings.LOOKUP_TIMEOUT = 2

    def sales_answers() -> bool:
        served = shop.get(f"/api/v1/clients/{client_id}/").body["served_by"]
        return bool(served["unavailable"] == ["crm"])

    wait_until(sales_answers, timeout=60)
    settings.LOOKUP_TIMEOUT = 0.5

    started = time.monotonic()
    answer = shop.get(f"/api/v1/clients/{client_id}/")
    took = time.monotonic() - started

    assert answer.status == 200
    assert took < settings.LOOKUP_TIMEOUT + 0.5
    body = answer.body
    profile = ("email", "first_name", "last_name", "phone", "company", "registered_at")
    assert {key: body[key] for key in profile} == dict.fromkeys(profile)
    assert (body["id"], body["communications"], body["purchases"]) == (client_id, [], [])
    assert body["served_by"]["unavailable"] == ["crm"]
    assert (body["served_by"]["mode"], body["served_by"]["source"]) == (
        "orchestration",
        "orchestrator",
    )
