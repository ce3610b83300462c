"""The shop's REST API (shop-api.md). Thin: validate, call the gateway, serialize.

Every request passes the same door (ShopAPIView): the bearer token, the rate limit, then for POST
and PATCH the JSON body (400 or 415 before anything else) and the Idempotency-Key
(integration/idempotency.py), claimed before the view runs and settled once it has answered.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from common.errors import ValidationFailed
from integration import gateway
from integration.models import ApiToken, Process
from shop_api import idempotency, rate_counts
from shop_api.auth import BearerTokenAuthentication
from shop_api.schema import ERRORS, operation
from shop_api.serializers import (
    ClientDetailsOut,
    ClientPage,
    ClientRegistration,
    ClientSearch,
    ClientSummaryOut,
    ClientUpdate,
    ConflictProblem,
    DetailsQuery,
    ProcessOut,
    ProcessStarted,
    PurchaseOrder,
)

WRITE_METHODS = ("POST", "PATCH")
MAX_DEPTH = 32  # the shop's bodies are flat objects; anything this deep is a mistake or an attack
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


# --- the door: content, rate, token ---------------------------------------------------------------


class ShopJSONParser(JSONParser):
    """DRF's strict JSON (no NaN), where nesting that would exhaust the stack is a 400 too."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep") from None
        if _depth(data) > MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        return data


def _depth(value: Any) -> int:
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


class JSONOnly(BaseContentNegotiation):
    """The API speaks JSON whatever the Accept header asks for (errors as problem+json)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        content_type = request.content_type.split(";")[0].strip().lower()
        return next((p for p in parsers if p.media_type == content_type), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


def parse_rate(rate: str) -> tuple[int, int]:
    """DRF's rate syntax: "600/minute" → (600, 60)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period[0]]


class TokenRateThrottle(BaseThrottle):
    """API_RATE_LIMIT requests per token in fixed windows, counted in the shared cache (Redis
    when configured, files under VAR_DIR otherwise) so that every web process counts together;
    in each process while that cache is unreachable (shop_api/rate_counts.py)."""

    def __init__(self) -> None:
        self.retry_after = 1.0

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = settings.API_RATE_LIMIT
        token = request.auth
        if not rate or not isinstance(token, ApiToken):
            return True
        limit, window = parse_rate(rate)
        now = time.time()
        window_start = int(now // window) * window
        key = f"shop-rate:{token.key_hash[:32]}"
        count = rate_counts.count_request(key, window_start=window_start, window=window)
        self.retry_after = max(1.0, math.ceil(window_start + window - now))
        return count <= limit

    def wait(self) -> float:
        return self.retry_after


def shop_token(request: Request) -> ApiToken:
    """The token that authenticated this request (the permission class ensures there is one)."""
    assert isinstance(request.auth, ApiToken)
    return request.auth


class ShopAPIView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [TokenRateThrottle]
    parser_classes = [ShopJSONParser]
    content_negotiation_class = JSONOnly
    http_method_names = ["get", "post", "patch", "head"]  # others answer 405

    claim: idempotency.Claim | None = None

    def initiator(self) -> gateway.Initiator:
        return gateway.Initiator(token=shop_token(self.request))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.claim = None
        response: HttpResponseBase | None = None
        try:
            response = super().dispatch(request, *args, **kwargs)
            return response
        finally:
            if self.claim is not None:
                claim, client_id = self.claim, kwargs.get("client_id")
                idempotency.settle_soon(lambda: _settle(claim, response, client_id=client_id))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # token, rate limit
        if request.method in WRITE_METHODS:
            body = request.data  # a malformed body or content type answers before any key
            self.claim = _claim_key(request, body, client_id=kwargs.get("client_id"))

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Replay):
            return exc.response()
        return super().handle_exception(exc)


# --- Idempotency-Key ------------------------------------------------------------------------------


class Replay(Exception):
    """The key was answered before: send that answer again."""

    def __init__(self, answer: idempotency.SavedAnswer) -> None:
        super().__init__("replay")
        self.answer = answer

    def response(self) -> Response:
        headers = dict(self.answer.headers)
        content_type = headers.pop("Content-Type", "application/json")
        return Response(
            self.answer.body, status=self.answer.status, headers=headers, content_type=content_type
        )


def _claim_key(request: Request, body: Any, *, client_id: UUID | None) -> idempotency.Claim | None:
    raw = request.headers.get(idempotency.HEADER)
    if raw is None:
        return None
    scope = idempotency.Scope(
        token_id=shop_token(request).pk,
        key=idempotency.key_validate(raw),
        method=str(request.method),
        path=request.path,
    )
    outcome = idempotency.key_claim(
        scope=scope, fingerprint=idempotency.body_fingerprint(body), client_id=client_id
    )
    if isinstance(outcome, idempotency.SavedAnswer):
        raise Replay(outcome)
    return outcome


def _settle(
    claim: idempotency.Claim, response: HttpResponseBase | None, *, client_id: UUID | None
) -> None:
    """Keep the answer for the key, or free the key (no answer at all: an unexpected error)."""
    if not isinstance(response, Response):
        idempotency.key_release(claim=claim)
        return
    body = response.data
    headers = {"Content-Type": response.content_type or "application/json"}
    if response.has_header("Location"):
        headers["Location"] = response["Location"]
    answered_for = body.get("client_id") if isinstance(body, dict) else None
    idempotency.answer_store(
        claim=claim,
        status=response.status_code,
        body=body,
        headers=headers,
        client_id=UUID(answered_for) if answered_for else client_id,
    )


# --- the endpoints --------------------------------------------------------------------------------


def started(process: Process, *, http_status: int = status.HTTP_202_ACCEPTED) -> Response:
    process_url = f"/api/v1/processes/{process.id}/"
    body = {
        "process_id": str(process.id),
        "client_id": str(process.client_id),
        "kind": process.kind,
        "status": process.status,
        "mode": process.mode,
        "links": {"process": process_url, "client": f"/api/v1/clients/{process.client_id}/"},
    }
    return Response(body, status=http_status, headers={"Location": process_url})


def _valid(serializer_class: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The request has invalid fields.", errors={"non_field_errors": ["Send a JSON object."]}
        )
    payload = serializer_class(data=data)
    payload.is_valid(raise_exception=True)
    return dict(payload.validated_data)


DETAILS_PARAMETERS = [
    OpenApiParameter(
        "min_version",
        {"type": "integer", "minimum": 1},
        description="Answer at this version of the client or newer (read your own writes): "
        "`client_version` from a process or webhook",
    ),
]
SEARCH_PARAMETERS = [
    OpenApiParameter(
        "email",
        {"type": "string", "minLength": 1, "maxLength": 254},
        required=True,
        description="Matched after the normalisation of registration (trimmed, domain lower-cased)",
    ),
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="Page number"),
]


class ClientsView(ShopAPIView):
    @extend_schema(
        **operation(
            "register_client",
            "Register a client (starts the registration process)",
            request=ClientRegistration,
            success={202: ProcessStarted},
            errors={
                409: "The email belongs to a client (`client_id` names it), or a request "
                "with this Idempotency-Key has not been answered yet"
            },
            conflict=ConflictProblem,
            writes=True,
        )
    )
    def post(self, request: Request) -> Response:
        data = _valid(ClientRegistration, request.data)
        return started(gateway.client_register(**data, initiator=self.initiator()))

    @extend_schema(
        **operation(
            "find_client_by_email",
            "Find a client by email (the client base cannot be listed)",
            success={200: ClientPage},
            errors={
                400: "No `email` given (the client base cannot be listed)",
                404: "No such page",
            },
            query=SEARCH_PARAMETERS,
        )
    )
    def get(self, request: Request) -> Response:
        if "email" not in request.query_params:
            raise ValidationFailed(
                "Give the email to look for.", errors={"email": ["This parameter is required."]}
            )
        email = _valid(ClientSearch, request.query_params.dict())["email"]
        paginator = PageNumberPagination()
        paginator.page_size = 50
        results = gateway.client_find_by_email(email=email)
        page: list[dict[str, Any]] = paginator.paginate_queryset(results, request, view=self)  # type: ignore[arg-type,assignment]
        return paginator.get_paginated_response(ClientSummaryOut(page, many=True).data)


class ClientView(ShopAPIView):
    @extend_schema(
        **operation(
            "client_details",
            "Client details (synchronous lookup)",
            success={200: ClientDetailsOut},
            errors={
                400: "`min_version` is not a whole number of at least 1",
                404: ERRORS[404],
                503: "No component could answer at `min_version` within LOOKUP_TIMEOUT, or the "
                "database is unreachable: retry after Retry-After seconds",
            },
            query=DETAILS_PARAMETERS,
        )
    )
    def get(self, request: Request, client_id: UUID) -> Response:
        params = request.query_params
        # Most reads name no version: a serializer (its fields copied anew for each one) only
        # when there is something to check.
        query = _valid(DetailsQuery, params.dict()) if params else {}
        details = gateway.client_details(client_id=client_id, min_version=query.get("min_version"))
        return Response(details)

    @extend_schema(
        **operation(
            "update_client",
            "Change a client (starts the update process)",
            request=ClientUpdate,
            success={202: ProcessStarted},
            errors={
                404: ERRORS[404],
                409: "The email belongs to another client (`client_id` names it), or a "
                "request with this Idempotency-Key has not been answered yet",
            },
            conflict=ConflictProblem,
            writes=True,
        )
    )
    def patch(self, request: Request, client_id: UUID) -> Response:
        changes = _valid(ClientUpdate, request.data)
        process = gateway.client_update(client_id=client_id, initiator=self.initiator(), **changes)
        return started(process)


class PurchasesView(ShopAPIView):
    @extend_schema(
        **operation(
            "record_purchase",
            "Record a purchase (starts the purchase process; idempotent by order_ref)",
            request=PurchaseOrder,
            success={202: ProcessStarted, 200: ProcessStarted},
            errors={404: ERRORS[404]},
            writes=True,
        )
    )
    def post(self, request: Request, client_id: UUID) -> Response:
        order = _valid(PurchaseOrder, request.data)
        process, created = gateway.purchase_record(
            client_id=client_id, initiator=self.initiator(), **order
        )
        return started(process, http_status=202 if created else 200)


class ErasureView(ShopAPIView):
    @extend_schema(
        **operation(
            "erase_client",
            "Erase a client (GDPR; starts the erasure process)",
            success={202: ProcessStarted},
            errors={404: "No such client, or erased already"},
            writes=True,
        )
    )
    def post(self, request: Request, client_id: UUID) -> Response:
        return started(gateway.client_erase(client_id=client_id, initiator=self.initiator()))


class ProcessView(ShopAPIView):
    @extend_schema(
        **operation(
            "process",
            "Where a process stands, with its trace",
            success={200: ProcessOut},
            errors={404: "No such process, or one another token started"},
        )
    )
    def get(self, request: Request, process_id: UUID) -> Response:
        process = gateway.process_get(process_id=process_id, token=shop_token(request))
        return Response(ProcessOut(process).data)
