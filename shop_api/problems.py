"""RFC 9457 problem details: the one place where errors become HTTP answers for the API."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from common.errors import ApplicationError, Unavailable
from common.outages import RETRY_AFTER_SECONDS

PROBLEM_TYPE = "https://ensemble.invalid/problems/"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Server error",
    503: "Service unavailable",
}


def problem(
    status_code: int,
    detail: str,
    *,
    errors: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    title = TITLES.get(status_code, "Error")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status_code,
        "detail": detail,
        "errors": errors or {},
    }
    body.update(extra or {})
    return body


def _flatten(errors: Any) -> dict[str, list[str]]:
    if isinstance(errors, dict):
        return {
            str(field): [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            for field, messages in errors.items()
        }
    if isinstance(errors, list):
        return {"non_field_errors": [str(m) for m in errors]}
    return {}


def api_exception_handler(error: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, answering problem+json for every error."""
    if isinstance(error, ApplicationError):
        body = problem(error.status, error.detail, errors=error.errors, extra=error.extra)
        answer = Response(body, status=error.status, content_type=CONTENT_TYPE)
        if isinstance(error, Unavailable):
            answer["Retry-After"] = str(error.retry_after)
        return answer
    if isinstance(error, Http404):
        error = exceptions.NotFound()
    response = exception_handler(error, context)
    if response is None:
        return None
    code = response.status_code
    if isinstance(error, exceptions.ValidationError):
        body = problem(400, "The request has invalid fields.", errors=_flatten(error.detail))
    else:
        detail = error.detail if isinstance(error, exceptions.APIException) else str(error)
        body = problem(code, str(detail))
    response.data = body
    response.content_type = CONTENT_TYPE
    if code == status.HTTP_401_UNAUTHORIZED:
        response["WWW-Authenticate"] = "Bearer"
    return response


def database_unavailable_problem() -> JsonResponse:
    """503 while the database is unreachable: nothing was done, the same request can be retried."""
    body = problem(
        503,
        "The database is unreachable; nothing was done. Retry after Retry-After seconds.",
        slug="database-unavailable",
    )
    response = JsonResponse(body, status=503, content_type=CONTENT_TYPE)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def problem_response(request: HttpRequest, status_code: int, detail: str) -> JsonResponse:
    return JsonResponse(problem(status_code, detail), status=status_code, content_type=CONTENT_TYPE)
