"""The OpenAPI schema describes every request, answer and error of the shop API, the docs
render it offline, and a served web process keeps to it under generated requests."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.management import call_command
from django.test import Client

from shop_api.auth import token_issue

OPERATIONS = {
    ("/api/v1/clients/", "get"): ({200}, {400, 401, 404, 429, 503}),
    ("/api/v1/clients/", "post"): ({202}, {400, 401, 409, 413, 415, 422, 429, 503}),
    ("/api/v1/clients/{client_id}/", "get"): ({200}, {400, 401, 404, 429, 503}),
    ("/api/v1/clients/{client_id}/", "patch"): (
        {202},
        {400, 401, 404, 409, 413, 415, 422, 429, 503},
    ),
    ("/api/v1/clients/{client_id}/purchases/", "post"): (
        {200, 202},
        {400, 401, 404, 409, 413, 415, 422, 429, 503},
    ),
    ("/api/v1/clients/{client_id}/erasure/", "post"): (
        {202},
        {400, 401, 404, 409, 413, 415, 422, 429, 503},
    ),
    ("/api/v1/processes/{process_id}/", "get"): ({200}, {401, 404, 429, 503}),
}


@pytest.fixture(scope="module")
def served_schema() -> dict[str, Any]:
    answer = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    return dict(answer.json())


def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=StringIO()
    )

    assert out.read_text().startswith("openapi: 3.0.3")


def test_every_operation_and_every_answer_is_described(served_schema: dict[str, Any]) -> None:
    described = {
        (path, method): operation
        for path, methods in served_schema["paths"].items()
        for method, operation in methods.items()
    }
    assert set(described) == set(OPERATIONS)
    for key, (successes, errors) in OPERATIONS.items():
        responses = described[key]["responses"]
        assert {int(code) for code in responses} == successes | errors, key
        for code in successes:
            assert list(responses[str(code)]["content"]) == ["application/json"], key
        for code in errors:
            assert list(responses[str(code)]["content"]) == ["application/problem+json"], key
        assert described[key]["security"] == [{"bearerAuth": []}]
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
        assert responses["503"]["headers"]["Retry-After"]["required"] is True


def test_writes_take_an_idempotency_key_and_say_where_the_process_is(
    served_schema: dict[str, Any],
) -> None:
    for (path, method), (successes, _) in OPERATIONS.items():
        operation = served_schema["paths"][path][method]
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        if method == "get":
            assert "Idempotency-Key" not in headers
            continue
        assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255
        for code in successes:
            assert operation["responses"][str(code)]["headers"]["Location"]["required"] is True
        callback = operation["callbacks"]["process_event"]["{callback_url}"]["post"]
        assert callback["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/WebhookEvent"
        }


def test_problem_bodies_and_the_webhook_event_are_exact(served_schema: dict[str, Any]) -> None:
    schemas = served_schema["components"]["schemas"]

    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail", "errors"}
    assert "client_id" in schemas["ConflictProblem"]["properties"]
    assert set(schemas["WebhookEvent"]["required"]) == {
        "event",
        "process_id",
        "kind",
        "client_id",
        "client_version",
        "status",
        "at",
    }
    update = schemas["PatchedClientUpdateRequest"]
    assert (update["additionalProperties"], update["minProperties"]) == (False, 1)


def test_the_docs_render_from_this_server_alone() -> None:
    client = Client()
    page = client.get("/api/docs/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "/api/schema/" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


# --- generated requests against a served web process ----------------------------------------------


def _generated_schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


# Loaded at collection from the same generator that serves /api/schema/ (checked equal below).
schema = schemathesis.openapi.from_dict(
    _generated_schema(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20250301,
            # unknown query parameters are ignored, as HTTP APIs do: not negative data here
            "generation": {"database": "none", "allow-extra-parameters": False},
        }
    ),
)


def test_the_schema_under_test_is_the_one_served(served_schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(_generated_schema(), default=str)) == served_schema


@pytest.fixture
def bearer(transactional_db: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_issue(name='fuzz').raw}"}


@pytest.mark.processes
@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    derandomize=True,
    max_examples=25,
    # one token for all of an operation's examples: what they create piles up, as on a real server
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_generated_requests_get_no_server_error_and_answers_that_conform(
    case: Any, web: str, bearer: dict[str, str]
) -> None:
    # Schema-valid requests may still be refused by the contract's rules (a total of "0", a
    # generated Idempotency-Key reused with another body): that check does not apply.
    case.call_and_validate(
        base_url=web,
        headers=bearer,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
