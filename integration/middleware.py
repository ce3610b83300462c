"""The shop API answers problem+json for everything, whatever Django would otherwise render:
unknown paths, a body over 1 MiB, an unexpected error (debug pages included)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from integration.problems import CONTENT_TYPE, problem

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v1/"


class ApiProblemMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        too_big = self._too_big(request)
        if too_big is not None:
            return too_big
        response = self.get_response(request)
        if response.status_code in (404, 405) and not _is_json(response):
            detail = (
                "Nothing lives at this address."
                if response.status_code == 404
                else (f"{request.method} is not allowed here.")
            )
            return _problem(response.status_code, detail)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return _problem(500, "Something went wrong on our side.")

    @staticmethod
    def _too_big(request: HttpRequest) -> HttpResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _problem(400, "Content-Length is not a number.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _problem(413, "The body is larger than 1 MiB.")
        return None


def _is_json(response: HttpResponse) -> bool:
    return "json" in response.get("Content-Type", "")


def _problem(status: int, detail: str) -> JsonResponse:
    return JsonResponse(problem(status, detail), status=status, content_type=CONTENT_TYPE)
