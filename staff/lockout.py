"""Login lockouts (django-axes): the page a refused login gets, and the audit entry of each one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from axes.helpers import get_client_username, get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from integration.models import AuditEntry

# Lengths of AuditEntry's columns: a posted username can be longer than any real one.
ACTOR_MAX_LENGTH = 150
TARGET_MAX_LENGTH = 200


def duration_text(duration: timedelta) -> str:
    """`900 s` -> "15 minutes", `5400 s` -> "1 hour 30 minutes"."""
    hours, rest = divmod(int(duration.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{amount} {unit}{'' if amount == 1 else 's'}"
        for amount, unit in ((hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if amount
    ]
    return " ".join(parts) or "0 seconds"


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the lockout page instead of the login form, with HTTP 429."""
    cool_off = get_cool_off(request)
    context = {
        "username": get_client_username(request, credentials) or "",
        "lockout_duration": duration_text(cool_off) if cool_off else None,
    }
    return render(
        request,
        "registration/lockout.html",
        context,
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


def lockout_recorded(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    """Receiver of axes' `user_locked_out`: one audit entry per lockout.

    Axes sends the signal again for every attempt it refuses while the lockout lasts. Only the
    failure that reached the limit was counted (axes sets `axes_failures_since_start` then), so
    the refused attempts, which it leaves unset, are not new lockouts.
    """
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    AuditEntry.objects.create(
        actor=(username or "anonymous")[:ACTOR_MAX_LENGTH],
        action="login.lockout",
        target=(username or "")[:TARGET_MAX_LENGTH],
        detail={"ip_address": ip_address, "path": request.path},
    )
