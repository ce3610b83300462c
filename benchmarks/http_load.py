"""A small, bounded HTTP load test of the shop API, for a server on this machine.

    python benchmarks/http_load.py --base http://127.0.0.1:8000 --token ens_... \\
        [--requests 2000] [--concurrency 16]

Registers clients (POST /api/v1/clients/), then reads their details (GET /api/v1/clients/<id>/),
over keep-alive connections from threads, and prints requests per second and latency percentiles
for each. Only loopback addresses are accepted; every loop is bounded in count and time.

`benchmarks/run.py` drives the same `load` function against the product and the bare baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TIME_LIMIT = 120.0
MAX_REQUESTS = 50_000

Job = Callable[[http.client.HTTPConnection, dict[str, str]], tuple[int, bytes]]


def require_loopback(base: str) -> None:
    if urlsplit(base).hostname not in LOOPBACK:
        raise SystemExit("only a server on this machine (loopback) may be loaded")


@dataclass
class LoadResult:
    label: str
    elapsed: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_second(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: int) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[p - 1]

    def ok_share(self, expected: int) -> float:
        return self.statuses.count(expected) / len(self.statuses) if self.statuses else 0.0

    def summary(self) -> str:
        return (
            f"{self.label:<34} {self.per_second:8.0f} req/s   p50 {self.percentile(50):7.1f} ms"
            f"   p99 {self.percentile(99):7.1f} ms   n={self.count}"
            f" statuses {sorted(set(self.statuses))}"
        )


class Worker(threading.Thread):
    """One keep-alive connection working through its share of the jobs until they or the time
    run out. http.client reopens the connection by itself when a server closes it."""

    def __init__(self, base: str, headers: dict[str, str], jobs: Sequence[Job], deadline: float):
        super().__init__(daemon=True)
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=30
        )
        self.headers = headers
        self.jobs = jobs
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []

    def run(self) -> None:
        for job in self.jobs:
            if time.monotonic() > self.deadline:
                return
            started = time.perf_counter()
            try:
                status, body = job(self.connection, self.headers)
            except (OSError, http.client.HTTPException):
                self.connection.close()
                status, body = 0, b""
            self.latencies.append((time.perf_counter() - started) * 1000)
            self.statuses.append(status)
            self.bodies.append(body)


def call(method: str, path: str, payload: dict[str, object] | None = None) -> Job:
    def job(connection: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[int, bytes]:
        data = json.dumps(payload).encode() if payload is not None else None
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()

    return job


def load(
    label: str,
    base: str,
    jobs: Sequence[Job],
    *,
    concurrency: int,
    headers: dict[str, str] | None = None,
    time_limit: float = TIME_LIMIT,
) -> LoadResult:
    """Run the jobs over `concurrency` keep-alive connections; stops at `time_limit` seconds."""
    require_loopback(base)
    jobs = list(jobs)[:MAX_REQUESTS]
    deadline = time.monotonic() + min(time_limit, TIME_LIMIT)
    headers = headers or {"Content-Type": "application/json"}
    workers = [Worker(base, headers, jobs[i::concurrency], deadline) for i in range(concurrency)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIME_LIMIT + 30)
    elapsed = time.perf_counter() - started
    return LoadResult(
        label=label,
        elapsed=elapsed,
        latencies_ms=sorted(x for w in workers for x in w.latencies),
        statuses=[s for w in workers for s in w.statuses],
        bodies=[b for w in workers for b in w.bodies],
    )


def registrations(run_id: str, count: int) -> list[Job]:
    return [
        call(
            "POST",
            "/api/v1/clients/",
            {"email": f"load-{run_id}-{i}@example.com", "first_name": "Load", "last_name": str(i)},
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    require_loopback(args.base)
    count = max(1, min(args.requests, 20_000))
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    registered = load(
        "POST /api/v1/clients/",
        args.base,
        registrations(uuid.uuid4().hex[:8], count),
        concurrency=args.concurrency,
        headers=headers,
    )
    print(registered.summary())
    client_ids = [
        json.loads(b)["client_id"] for b in registered.bodies if b.startswith(b'{"process_id')
    ]
    time.sleep(2)  # let the registrations reach the components
    reads = [call("GET", f"/api/v1/clients/{cid}/") for cid in client_ids]
    print(
        load(
            "GET /api/v1/clients/<id>/",
            args.base,
            reads,
            concurrency=args.concurrency,
            headers=headers,
        ).summary()
    )


if __name__ == "__main__":
    main()
