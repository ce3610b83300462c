"""What drf-spectacular needs to describe the shop API exactly (shop-api.md): the bearer token
scheme, the problem+json errors each operation can answer, the headers that come with them, the
Idempotency-Key, and the webhook the shop receives."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiCallback,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers

from integration.models import ProcessKind, ProcessStatus
from shop_api.serializers import Problem, ProcessStarted

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "shop_api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "manage.py issue_api_token"}


class ClosedObjectScheme(OpenApiSerializerExtension):
    """PATCH takes the updatable fields only (any other is a 400), at least one of them."""

    target_class = "shop_api.serializers.ClientUpdate"

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False, "minProperties": 1}


# --- the webhook ----------------------------------------------------------------------------------


class WebhookEvent(serializers.Serializer):
    event = serializers.ChoiceField(
        choices=["process.completed", "process.failed", "process.stuck", "process.closed"]
    )
    process_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ProcessKind.choices)
    client_id = serializers.UUIDField()
    client_version = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=ProcessStatus.choices)
    at = serializers.DateTimeField()


WEBHOOK = OpenApiCallback(
    "process_event",
    "{callback_url}",
    extend_schema(
        summary="Sent to the token's callback URL when a process it started completes, fails, "
        "gets stuck or is closed",
        description="`callback_url` is the URL given to `manage.py issue_api_token --callback-url`."
        " Header `X-Ensemble-Signature: sha256=<hex HMAC-SHA256 of the raw body with the token's "
        "webhook secret>`. Retried with exponential backoff until a 2xx answer, for up to 24 "
        "hours. One process may send several (stuck, then completed).",
        request=WebhookEvent,
        responses={200: OpenApiResponse(description="Any 2xx acknowledges the event")},
    ),
)


# --- operations -----------------------------------------------------------------------------------

ERRORS = {
    400: "Malformed JSON, invalid fields (named in `errors`) or an invalid Idempotency-Key",
    401: "Missing, invalid or revoked token (see WWW-Authenticate)",
    404: "No such client (or not yet known to the component that answers, or erased)",
    409: "A request with this Idempotency-Key has not been answered yet",
    413: "Body over 1 MiB",
    415: "Content-Type is not application/json",
    422: "This Idempotency-Key was used with a different body",
    429: "Rate limit reached: retry after Retry-After seconds",
    503: "The database is unreachable; nothing was done: retry after Retry-After seconds",
}
WRITE_ERRORS = (400, 409, 413, 415, 422)

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    description="The same key with the same body (compared as parsed JSON) answers the first "
    "response again and does the work once; with a different body 422; while the first request "
    "is unanswered 409. Scoped to token + method + path; kept at least 24 hours. 400, 413, 415, "
    "429 and that 409 are not kept.",
)
RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 1},
    OpenApiParameter.HEADER,
    required=True,
    response=[429, 503],
    description="Seconds to wait",
)
WWW_AUTHENTICATE = OpenApiParameter(
    "WWW-Authenticate",
    {"type": "string", "enum": ["Bearer"]},
    OpenApiParameter.HEADER,
    required=True,
    response=[401],
)


def _location(codes: list[int]) -> OpenApiParameter:
    return OpenApiParameter(
        "Location",
        str,
        OpenApiParameter.HEADER,
        required=True,
        response=codes,
        description="/api/v1/processes/<process_id>/",
    )


def operation(
    operation_id: str,
    summary: str,
    *,
    success: dict[int, Any],
    errors: dict[int, str] | None = None,
    request: Any = None,
    query: list[OpenApiParameter] | None = None,
    writes: bool = False,
    conflict: Any = None,
) -> dict[str, Any]:
    """extend_schema's arguments for one shop operation: its answers and every error it gives
    (`errors` adds codes, or words a code's description for this operation)."""
    described = {401: ERRORS[401], 429: ERRORS[429], 503: ERRORS[503]}
    if writes:
        described.update({code: ERRORS[code] for code in WRITE_ERRORS})
    described.update(errors or {})
    responses: dict[Any, Any] = {(code, JSON): body for code, body in success.items()}
    for code in sorted(described):
        schema = conflict if code == 409 and conflict is not None else Problem
        responses[(code, PROBLEM_JSON)] = OpenApiResponse(schema, description=described[code])
    parameters = [*(query or []), RETRY_AFTER, WWW_AUTHENTICATE]
    started = [code for code, body in success.items() if body is ProcessStarted]
    if started:
        parameters.append(_location(started))
    if writes:
        parameters.append(IDEMPOTENCY_KEY)
    return {
        "operation_id": operation_id,
        "summary": summary,
        "request": request,
        "responses": responses,
        "parameters": parameters,
        "callbacks": [WEBHOOK] if started else None,
    }
