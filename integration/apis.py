"""The shop's REST API (shop-api.md). Thin: validate, call the gateway, serialize."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from common.errors import ValidationFailed
from integration import gateway
from integration.api_auth import BearerTokenAuthentication
from integration.models import ApiToken, Process
from integration.serializers import (
    ClientDetailsOut,
    ClientRegistrationRequest,
    ClientSummaryOut,
    ClientUpdateRequest,
    ConflictProblem,
    Problem,
    ProcessOut,
    ProcessStarted,
    PurchaseRequest,
)

PROBLEMS = {
    400: OpenApiResponse(Problem, description="Invalid input"),
    401: OpenApiResponse(Problem, description="Missing, invalid or revoked token"),
    413: OpenApiResponse(Problem, description="Body over 1 MiB"),
    415: OpenApiResponse(Problem, description="Not application/json"),
    429: OpenApiResponse(Problem, description="Rate limit (see Retry-After)"),
}
NOT_FOUND = {404: OpenApiResponse(Problem, description="Unknown (or erased) client")}


class TokenRateThrottle(SimpleRateThrottle):
    """API_RATE_LIMIT requests per token, counted in the cache (Redis when configured)."""

    scope = "shop"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = request.auth
        return f"throttle:shop:{token.pk}" if token is not None else None


def shop_token(request: Request) -> ApiToken:
    """The token that authenticated this request (the permission class ensures there is one)."""
    assert isinstance(request.auth, ApiToken)
    return request.auth


class ShopAPIView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [TokenRateThrottle]

    def initiator(self) -> gateway.Initiator:
        return gateway.Initiator(token=shop_token(self.request))


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


class ClientsView(ShopAPIView):
    @extend_schema(
        operation_id="register_client",
        summary="Register a client (starts the registration process)",
        request=ClientRegistrationRequest,
        responses={
            202: ProcessStarted,
            409: OpenApiResponse(ConflictProblem, description="Email already registered"),
            **PROBLEMS,
        },
    )
    def post(self, request: Request) -> Response:
        payload = ClientRegistrationRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        process = gateway.client_register(
            data=dict(payload.validated_data), initiator=self.initiator()
        )
        return started(process)

    @extend_schema(
        operation_id="find_client_by_email",
        summary="Find a client by email",
        parameters=[OpenApiParameter("email", str, required=True)],
        responses={200: ClientSummaryOut(many=True), **PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        email = request.query_params.get("email", "").strip()
        if not email:
            raise ValidationFailed(
                "Give the email to look for.", errors={"email": ["This parameter is required."]}
            )
        paginator = PageNumberPagination()
        paginator.page_size = 50
        results = gateway.client_find_by_email(email=email)
        page: list[dict[str, Any]] = paginator.paginate_queryset(results, request, view=self)  # type: ignore[arg-type,assignment]
        return paginator.get_paginated_response(ClientSummaryOut(page, many=True).data)


class ClientView(ShopAPIView):
    @extend_schema(
        operation_id="client_details",
        summary="Client details (synchronous lookup)",
        responses={200: ClientDetailsOut, **NOT_FOUND, **PROBLEMS},
    )
    def get(self, request: Request, client_id: UUID) -> Response:
        return Response(gateway.client_details(client_id=client_id))

    @extend_schema(
        operation_id="update_client",
        summary="Change a client (starts the update process)",
        request=ClientUpdateRequest,
        responses={
            202: ProcessStarted,
            409: OpenApiResponse(ConflictProblem, description="Email taken"),
            **NOT_FOUND,
            **PROBLEMS,
        },
    )
    def patch(self, request: Request, client_id: UUID) -> Response:
        payload = ClientUpdateRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        changes = {key: request.data[key] for key in payload.validated_data}
        process = gateway.client_update(
            client_id=client_id, data=changes, initiator=self.initiator()
        )
        return started(process)


class PurchasesView(ShopAPIView):
    @extend_schema(
        operation_id="record_purchase",
        summary="Record a purchase (starts the purchase process; idempotent by order_ref)",
        request=PurchaseRequest,
        responses={
            202: ProcessStarted,
            200: OpenApiResponse(ProcessStarted, description="order_ref known: the original"),
            **NOT_FOUND,
            **PROBLEMS,
        },
    )
    def post(self, request: Request, client_id: UUID) -> Response:
        payload = PurchaseRequest(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        data["total"] = str(request.data["total"]).strip()
        process, created = gateway.purchase_record(
            client_id=client_id, data=data, initiator=self.initiator()
        )
        return started(process, http_status=202 if created else 200)


class ErasureView(ShopAPIView):
    @extend_schema(
        operation_id="erase_client",
        summary="Erase a client (GDPR; starts the erasure process)",
        request=None,
        responses={202: ProcessStarted, **NOT_FOUND, **PROBLEMS},
    )
    def post(self, request: Request, client_id: UUID) -> Response:
        process = gateway.client_erase(client_id=client_id, initiator=self.initiator())
        return started(process)


class ProcessView(ShopAPIView):
    @extend_schema(
        operation_id="process",
        summary="Where a process stands, with its trace",
        responses={200: ProcessOut, 404: OpenApiResponse(Problem), **PROBLEMS},
    )
    def get(self, request: Request, process_id: UUID) -> Response:
        process = gateway.process_get(process_id=process_id, token=shop_token(request))
        return Response(ProcessOut(process).data)
