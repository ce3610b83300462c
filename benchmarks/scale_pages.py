"""Times the pages that grow with the data, in-process (Django's test client), and counts their
queries; prints one JSON object. Run against a database filled by `manage.py load_scale_data`.

    DATABASE_URL=... python -m benchmarks.scale_pages --client-number 500 --repeat 5

Each page is asked once to warm up, then `--repeat` times; the median is its time. The slowest
queries of a page slower than SLOW_MS are explained (EXPLAIN ANALYZE on PostgreSQL).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client as TestClient  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from integration.core import modes  # noqa: E402
from integration.management.commands.load_scale_data import (  # noqa: E402
    client_email,
    client_id,
    last_name,
    process_id,
)

SLOW_MS = 30.0
EXPLAINED_PER_PAGE = 2


def pages(number: int, first_process: int) -> dict[str, str]:
    cid, email = client_id(number), client_email(number)
    return {
        "admin process list": "/admin/integration/process/",
        "admin search by process id": f"/admin/integration/process/?q={process_id(first_process)}",
        "admin search by email": f"/admin/integration/process/?q={email}",
        "staff search by name": f"/clients/?q={last_name(number)}",
        "staff search by email": f"/clients/?q={email}",
        "dashboard": "/",
        "compare page (last week)": "/integration/compare/?window=week",
        "metrics scrape": "/metrics",
        "staff client page": f"/clients/{cid}/",
        "api details (choreography)": f"/api/v1/clients/{cid}/",
    }


def shop_token() -> str:
    out = io.StringIO()
    call_command("issue_api_token", f"scale-{time.time_ns()}", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def explain(sql: str) -> str:
    prefix = (
        "EXPLAIN (ANALYZE, BUFFERS) "
        if connection.vendor == "postgresql"
        else "EXPLAIN QUERY PLAN "
    )
    with connection.cursor() as cursor:
        cursor.execute(prefix + sql)
        return "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())


def measure(browser: TestClient, api: TestClient, path: str, repeat: int) -> dict[str, Any]:
    client = api if path.startswith("/api/") else browser
    first = client.get(path)
    timings = []
    queries: list[dict[str, Any]] = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        queries = captured.captured_queries
    result: dict[str, Any] = {
        "path": path,
        "status": response.status_code,
        "first_status": first.status_code,
        "median_ms": statistics.median(timings),
        "timings_ms": timings,
        "queries": len(queries),
    }
    if result["median_ms"] > SLOW_MS:
        slowest = sorted(queries, key=lambda q: float(q["time"]), reverse=True)
        result["explain"] = [
            {"ms": float(q["time"]) * 1000, "sql": q["sql"], "plan": _safe_explain(q["sql"])}
            for q in slowest[:EXPLAINED_PER_PAGE]
            if q["sql"].lstrip().upper().startswith("SELECT")
        ]
    return result


def _safe_explain(sql: str) -> str:
    try:
        return explain(sql)
    except Exception as error:  # noqa: BLE001 - a plan we cannot get is reported, not fatal
        return f"(no plan: {error})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client-number", type=int, default=500)
    parser.add_argument("--processes-per-client", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mode", choices=["orchestration", "choreography"])
    args = parser.parse_args()
    if args.mode:
        # The replicas were loaded current: the mode is set without `integration_mode`'s fill,
        # whose time is measured on its own.
        modes.mode_set(mode=args.mode, changed_by="bench")
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username="bench-operator", defaults={"is_staff": True, "is_superuser": True}
    )
    browser = TestClient()
    browser.force_login(user)
    api = TestClient(headers={"Authorization": f"Bearer {shop_token()}"})
    number = args.client_number
    results = {
        name: measure(browser, api, path, max(1, min(args.repeat, 20)))
        for name, path in pages(number, number * args.processes_per_client).items()
    }
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
