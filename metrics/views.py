"""`/metrics`: thin: who may scrape (`access`), then the figures the collector reads now."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from metrics import access
from metrics.collector import REGISTRY


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = access.refusal(request)
    if refusal is not None:
        return refusal
    response = HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
