"""The shop API answers problem+json for everything, whatever Django would otherwise render:
unknown paths, a body over 1 MiB (announced or chunked), an unexpected error (debug pages
included), an unreachable database (503 with Retry-After). An API path without its trailing
slash is served as the path with it: Django would answer a redirect (an error page for a POST in
debug mode), and a POST cannot follow one."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from common.outages import database_unavailable
from shop_api.problems import CONTENT_TYPE, database_unavailable_problem, problem

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v1/"
READ_SIZE = 64 * 1024


class ApiProblemMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        _add_trailing_slash(request)
        refused = _refuse_body(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        if response.status_code in (404, 405) and not _is_json(response):
            detail = (
                "Nothing lives at this address."
                if response.status_code == 404
                else f"{request.method} is not allowed here."
            )
            return _problem(response.status_code, detail)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if database_unavailable(exception):
            logger.warning(
                "database unavailable for %s %s: %s", request.method, request.path, exception
            )
            return database_unavailable_problem()
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return _problem(500, "Something went wrong on our side.")


def _add_trailing_slash(request: HttpRequest) -> None:
    if request.path_info.endswith("/"):
        return
    try:
        resolve(request.path_info + "/")
    except Resolver404:
        return
    request.path_info += "/"
    request.path += "/"


def _refuse_body(request: HttpRequest) -> HttpResponse | None:
    """413 for a body over the limit, before anything reads it; 400 for a nonsense length."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            return _problem(400, "Content-Length is not a number of bytes.")
        if length > limit:
            return _problem(413, "The body is larger than 1 MiB.")
        return None
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return _buffer_chunked(request, limit)
    return None


def _buffer_chunked(request: HttpRequest, limit: int) -> HttpResponse | None:
    """A chunked body announces no length: read at most the limit, and refuse what is beyond it.
    Django reads a request without Content-Length as empty, so the body read is handed back."""
    stream = request.META.get("wsgi.input")
    if stream is None:  # not WSGI: the server has read the body already
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(READ_SIZE, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return _problem(413, "The body is larger than 1 MiB.")
    body = b"".join(chunks)
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = LimitedStream(io.BytesIO(body), len(body))  # type: ignore[assignment]
    return None


def _is_json(response: HttpResponse) -> bool:
    return "json" in response.get("Content-Type", "")


def _problem(status: int, detail: str) -> JsonResponse:
    return JsonResponse(problem(status, detail), status=status, content_type=CONTENT_TYPE)
