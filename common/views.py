"""Liveness and readiness, for load balancers and operators."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.db import connection, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error

from common.middleware import database_unavailable_page
from common.outages import RETRY_AFTER_SECONDS, database_unavailable
from config.celery import app as celery_app


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; says nothing about what it depends on."""
    return JsonResponse({"status": "ok"})


# A load balancer asks often and gives up soon: every probe runs at once, and one that has not
# answered by then counts as down (it finishes in the background, bounded by its own timeouts).
READY_DEADLINE_SECONDS = 0.8


def _check_database() -> str | None:
    # This thread's own connection (from the pool on PostgreSQL), given back when it is done.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return _one_line(error)
    finally:
        connections.close_all()
    return None


def _check_broker() -> str | None:
    # One attempt, bounded by the broker's connect and socket timeouts (config/env.py).
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0)
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return _one_line(error)
    return None


PROBES: dict[str, Callable[[], str | None]] = {
    "database": _check_database,
    "broker": _check_broker,
}


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _timed(check: Callable[[], str | None]) -> tuple[str | None, float]:
    started = time.perf_counter()
    error = check()
    return error, time.perf_counter() - started


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the broker answer: 200 with each check, 503 naming what failed; within
    READY_DEADLINE_SECONDS whatever is down."""
    executor = ThreadPoolExecutor(max_workers=len(PROBES), thread_name_prefix="readyz")
    futures = {name: executor.submit(_timed, check) for name, check in PROBES.items()}
    wait(futures.values(), timeout=READY_DEADLINE_SECONDS)
    executor.shutdown(wait=False)
    checks: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        if future.done():
            error, seconds = future.result()
        else:
            error = f"no answer within {READY_DEADLINE_SECONDS:g} s"
            seconds = READY_DEADLINE_SECONDS
        checks[name] = {
            "ok": error is None,
            "ms": round(seconds * 1000, 1),
            **({"error": error} if error else {}),
        }
    unavailable = [name for name, check in checks.items() if not check["ok"]]
    body: dict[str, Any] = {"status": "unavailable" if unavailable else "ok", "checks": checks}
    if unavailable:
        body["unavailable"] = unavailable
    return JsonResponse(body, status=503 if unavailable else 200)


def _wants_problem(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_problem(request):
        return _problem(404, "Not found", "Nothing lives at this address.")
    return page_not_found(request, exception or Exception())


def server_error(request: HttpRequest) -> HttpResponse:
    # Called while the error is being handled: a database that failed outside a view (in a
    # middleware) is an outage to wait out, not a bug.
    if database_unavailable(sys.exc_info()[1]):
        if _wants_problem(request):
            return _problem(503, "Service unavailable", "The database is unreachable.", retry=True)
        return database_unavailable_page()
    if _wants_problem(request):
        return _problem(500, "Server error", "Something went wrong on our side.")
    return default_server_error(request)


def _problem(status: int, title: str, detail: str, *, retry: bool = False) -> JsonResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": {}}
    response = JsonResponse(body, status=status, content_type="application/problem+json")
    if retry:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
