"""A small, bounded HTTP load test of the shop API, for a server on this machine.

    python benchmarks/http_load.py --base http://127.0.0.1:8000 --token ens_... \\
        [--requests 2000] [--concurrency 16]

Registers clients (POST /api/v1/clients/), then reads their details (GET /api/v1/clients/<id>/),
over keep-alive connections from threads, and prints requests per second and latency percentiles
for each. Only loopback addresses are accepted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TIME_LIMIT = 120.0


class Worker(threading.Thread):
    def __init__(
        self,
        base: str,
        token: str,
        jobs: list[Callable[[http.client.HTTPConnection, dict[str, str]], tuple[int, bytes]]],
    ):
        super().__init__(daemon=True)
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30
        )
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.jobs = jobs
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []

    def run(self) -> None:
        deadline = time.monotonic() + TIME_LIMIT
        for job in self.jobs:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            status, body = job(self.connection, self.headers)
            self.latencies.append((time.perf_counter() - started) * 1000)
            self.statuses.append(status)
            self.bodies.append(body)


def call(method: str, path: str, payload: dict[str, object] | None = None):
    def job(connection: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[int, bytes]:
        data = json.dumps(payload).encode() if payload is not None else None
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    return job


def run(label: str, base: str, token: str, jobs: list, concurrency: int) -> list[bytes]:
    workers = [Worker(base, token, jobs[i::concurrency]) for i in range(concurrency)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIME_LIMIT + 10)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for w in workers for x in w.latencies)
    statuses = [s for w in workers for s in w.statuses]
    if not latencies:
        print(f"{label:<28} no answers")
        return []
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(
        f"{label:<28} {len(latencies) / elapsed:8.0f} req/s   p50 {cuts[49]:6.1f} ms"
        f"   p95 {cuts[94]:6.1f} ms   statuses {sorted(set(statuses))}"
    )
    return [b for w in workers for b in w.bodies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if urlsplit(args.base).hostname not in LOOPBACK:
        raise SystemExit("only a server on this machine (loopback) may be loaded")
    count = max(1, min(args.requests, 20_000))
    run_id = uuid.uuid4().hex[:8]
    registrations = [
        call(
            "POST",
            "/api/v1/clients/",
            {"email": f"load-{run_id}-{i}@example.com", "first_name": "Load", "last_name": str(i)},
        )
        for i in range(count)
    ]
    bodies = run("POST /api/v1/clients/", args.base, args.token, registrations, args.concurrency)
    client_ids = [json.loads(b)["client_id"] for b in bodies if b.startswith(b'{"process_id')]
    time.sleep(2)  # let the registrations reach the components
    reads = [call("GET", f"/api/v1/clients/{cid}/") for cid in client_ids]
    run("GET /api/v1/clients/<id>/", args.base, args.token, reads, args.concurrency)


if __name__ == "__main__":
    main()
