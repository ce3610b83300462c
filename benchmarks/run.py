"""`make bench`: Ensemble's figures as ratios of bare baselines on the same services.

    python benchmarks/run.py [--quick] [--out var/bench]

1. Services: DATABASE_URL / CELERY_BROKER_URL / CELERY_RESULT_BACKEND from the environment, else
   local PostgreSQL and Redis when reachable, else the embedded defaults. The bench makes its own
   databases there (`ensemble_bench`, `ensemble_bench_scale_small`, `ensemble_bench_scale`,
   `ensemble_bench_bare`) and, on a local Redis, its own database numbers.
2. Bare baselines: a minimal DRF app under gunicorn (2 sync workers): create, retrieve, a trivial
   view; a 5-step Celery chain, one insert per step, on the same broker. Started first and kept
   up, each measured just before the product's figure it is compared with.
3. The product: `make web` (API_RATE_LIMIT=0), `make worker`, `make scheduler`, a fresh database.
4. Scale: `manage.py load_scale_data` at a small and a large size, each in a database of its
   own; pages timed at both sizes in turns.
Prints one table, writes var/bench/bench.json, bench.svg and bench.md. Loopback only; every loop
is bounded in count and time, and the whole run in TIME_BUDGET seconds (it scales down phases
that would not fit, and says so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import http_load, report
from benchmarks.report import Figure, Rule
from benchmarks.services import (
    ROOT,
    Child,
    Database,
    Services,
    choose,
    clone_database,
    empty_broker,
    free_port,
    recreate_database,
    wait_for,
)

PY = sys.executable
CONCURRENCY = 8
TIME_BUDGET = 14 * 60.0
SCALE_RESERVE = 300.0  # seconds kept for the scale phase
SCALE_ROUNDS = 3  # page timings at both sizes, in turns
MODE_SWITCH_LIMIT = 120.0  # the target is 30 s; past this the switch is stopped, not waited for
# Pages whose goal is a time, not a ratio to their time at 1,000 clients (the comparison page
# "loads in well under a second"; a scrape every 15 s must stay cheap).
SCALE_LIMITS_MS = {"compare page (last week)": 500.0, "metrics scrape": 250.0}
SECRET_KEY = "bench-" + "k" * 40  # loopback-only servers of a throwaway database


@dataclass(frozen=True)
class Sizes:
    requests: int  # per HTTP measurement
    request_seconds: float  # at most, per HTTP measurement
    accept: int
    burst: int
    singles: int
    memory_processes: int
    memory_lookups: int
    memory_seconds: float
    scale_small: tuple[int, int, int]
    scale_large: tuple[int, int, int]
    page_repeat: int


FULL = Sizes(
    requests=3000,
    request_seconds=20,
    accept=1000,
    burst=300,
    singles=5,
    memory_processes=10_000,
    memory_lookups=10_000,
    memory_seconds=240,
    scale_small=(1_000, 2_000, 20_000),
    scale_large=(100_000, 200_000, 2_000_000),
    page_repeat=5,
)
QUICK = Sizes(
    requests=200,
    request_seconds=5,
    accept=100,
    burst=30,
    singles=2,
    memory_processes=100,
    memory_lookups=200,
    memory_seconds=20,
    scale_small=(50, 100, 1_000),
    scale_large=(500, 1_000, 10_000),
    page_repeat=2,
)


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allow(self, cap: float, keep: float = SCALE_RESERVE) -> float:
        """Seconds a phase may take: its cap, less when the rest would not fit."""
        return max(10.0, min(cap, self.left() - keep))


# (time, 1-minute load average, message) of every line logged: anything else running on the
# machine skews the figures measured then, and the JSON keeps when that was.
LOG: list[tuple[str, float, str]] = []


def log(message: str) -> None:
    moment, load = time.strftime("%H:%M:%S"), os.getloadavg()[0]
    LOG.append((moment, load, message))
    print(f"[bench {moment} load {load:4.1f}] {message}", flush=True)


def run_command(command: list[str], env: dict[str, str], timeout: float = 600) -> tuple[str, float]:
    """Runs to completion; returns stdout and the wall time. A failure stops the bench."""
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout, time.perf_counter() - started


def timed_command(command: list[str], env: dict[str, str], limit: float) -> float | None:
    """Wall time of a command that must succeed, or None when it ran past `limit` (stopped)."""
    try:
        _, seconds = run_command(command, env, timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    return seconds


def epoch(value: Any) -> float:
    """A timestamp read from either database as seconds since the epoch."""
    if value is None:
        return float("nan")
    if isinstance(value, str):  # SQLite keeps naive UTC text
        value = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return float(value.timestamp())


# --- the bare baselines --------------------------------------------------------------------------


class Bare:
    """The bare baselines' servers, started once and kept up (idle, they cost nothing) so that
    each is measured just before the product's figure it is compared with: a machine whose speed
    drifts over minutes moves both sides of a ratio, not one."""

    def __init__(self, services: Services, sizes: Sizes, logs: Path) -> None:
        self.services = services
        self.sizes = sizes
        self.logs = logs
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.bare.settings",
            "BENCH_BARE_DATABASE_URL": services.bare_db,
            "BENCH_BARE_BROKER_URL": services.bare_broker,
            "PYTHONUNBUFFERED": "1",
        }
        self.base = ""
        self.server: Child | None = None
        self.worker: Child | None = None
        self.row_ids: list[int] = []

    def start(self) -> None:
        recreate_database(self.services.bare_db)
        if self.services.owns_broker:
            empty_broker(self.services.bare_broker)
        run_command([PY, "-m", "django", "migrate", "--run-syncdb", "-v0"], self.env)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = Child(
            "bare-gunicorn",
            [
                *(PY, "-m", "gunicorn", "benchmarks.bare.wsgi:application", "--workers", "2"),
                *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            ],
            self.env,
            self.logs,
        )
        self.worker = Child(
            "bare-celery",
            [
                *(PY, "-m", "celery", "-A", "benchmarks.bare.chain", "worker"),
                *("--concurrency", "4", "--queues", "bench_bare", "--without-gossip"),
                *("--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"),
            ],
            self.env,
            self.logs,
        )
        if not wait_for(lambda: _answers(f"{self.base}/ping"), timeout=30):
            raise RuntimeError(f"bare app did not start:\n{self.server.tail()}")
        _warm_up(self.base, [http_load.call("GET", "/ping")])

    def stop(self) -> None:
        for child in (self.worker, self.server):
            if child is not None:
                child.stop()

    def trivial(self) -> http_load.LoadResult:
        pings = [http_load.call("GET", "/ping") for _ in range(self.sizes.requests)]
        return _load("bare trivial view", self.base, pings, self.sizes)

    def create(self) -> http_load.LoadResult:
        run_id = uuid.uuid4().hex[:8]
        creates = [
            http_load.call(
                "POST", "/rows/", {"name": f"Row {i}", "email": f"{run_id}-{i}@example.com"}
            )
            for i in range(self.sizes.requests)
        ]
        created = _load("bare create", self.base, creates, self.sizes)
        self.row_ids += [json.loads(b)["id"] for b in created.bodies if b.startswith(b'{"id"')]
        return created

    def retrieve(self) -> http_load.LoadResult:
        if not self.row_ids:
            self.create()
        ids = self.row_ids
        reads = [
            http_load.call("GET", f"/rows/{ids[i % len(ids)]}/") for i in range(self.sizes.requests)
        ]
        return _load("bare retrieve", self.base, reads, self.sizes)

    def chain(self) -> dict[str, Any]:
        """A burst of bare chains, then single ones (the chain worker runs all along)."""
        out, _ = run_command(
            [
                *(PY, "-m", "benchmarks.bare.chain_client"),
                *("--burst", str(self.sizes.burst), "--singles", str(self.sizes.singles)),
            ],
            self.env,
            timeout=300,
        )
        chain: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        log(
            f"bare chain: one in {chain['single_median_seconds'] * 1000:.1f} ms, "
            f"burst {chain['burst']['per_second']:.0f}/s"
        )
        return chain


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _warm_up(base: str, jobs: list[http_load.Job], headers: dict[str, str] | None = None) -> None:
    http_load.load(
        "warm-up", base, jobs * 20, concurrency=CONCURRENCY, headers=headers, time_limit=10
    )


def _load(
    label: str,
    base: str,
    jobs: list[http_load.Job],
    sizes: Sizes,
    headers: dict[str, str] | None = None,
) -> http_load.LoadResult:
    result = http_load.load(
        label,
        base,
        jobs,
        concurrency=CONCURRENCY,
        headers=headers,
        time_limit=sizes.request_seconds,
    )
    log(result.summary())
    return result


# --- the product ---------------------------------------------------------------------------------


class Product:
    """Ensemble started the way operators start it, on the bench's database and broker."""

    def __init__(self, services: Services, var_dir: Path, logs: Path) -> None:
        self.services = services
        self.logs = logs
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = product_environment(services, services.product_db, var_dir, self.port)
        self.web: Child | None = None
        self.worker: Child | None = None
        self.scheduler: Child | None = None
        self.headers: dict[str, str] = {}
        self.db: Database | None = None

    def prepare(self) -> None:
        recreate_database(self.services.product_db)
        if self.services.owns_broker and self.services.product_broker:
            empty_broker(self.services.product_broker)
        _, seconds = run_command([PY, "manage.py", "migrate", "--noinput", "-v0"], self.env)
        log(f"product database migrated in {seconds:.1f} s")
        # The scale databases start from the same freshly migrated schema.
        clone_database(self.services.product_db, self.services.scale_small_db)
        clone_database(self.services.product_db, self.services.scale_db)
        out, _ = run_command([PY, "manage.py", "issue_api_token", "bench"], self.env)
        token = out.strip().splitlines()[-1]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.db = Database(self.services.product_db)

    def start_web(self) -> None:
        self.web = Child(
            "product-web", ["make", "-s", "web", f"PORT={self.port}"], self.env, self.logs
        )
        if not wait_for(lambda: _answers(f"{self.base}/healthz"), timeout=90, interval=0.25):
            raise RuntimeError(f"the web server did not start:\n{self.web.tail()}")

    def start_workers(self) -> None:
        self.worker = Child("product-worker", ["make", "-s", "worker"], self.env, self.logs)
        self.scheduler = Child(
            "product-scheduler", ["make", "-s", "scheduler"], self.env, self.logs
        )

    def stop(self) -> None:
        for child in (self.scheduler, self.worker, self.web):
            if child is not None:
                child.stop()
        if self.db is not None:
            self.db.close()

    def manage(self, *arguments: str) -> float:
        _, seconds = run_command([PY, "manage.py", *arguments], self.env)
        return seconds

    # What the database says about processes started since a moment.

    def statuses_since(self, since: float) -> tuple[dict[str, int], float]:
        assert self.db is not None
        moment = dt.datetime.fromtimestamp(since, dt.UTC)
        param: Any = moment.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db.sqlite else moment
        rows = self.db.rows(
            "SELECT status, count(*), max(finished_at) FROM integration_process "
            "WHERE started_at >= %s GROUP BY status",
            [param],
        )
        counts = {status: int(count) for status, count, _ in rows}
        last = max(
            (epoch(f) for s, _, f in rows if s == "completed" and f is not None),
            default=float("nan"),
        )
        return counts, last

    def wait_settled(self, since: float, expected: int, timeout: float) -> tuple[int, float]:
        """Waits until `expected` processes started since `since` have finished (or the time is
        up); returns how many completed and when the last one did."""
        deadline = time.monotonic() + timeout
        while True:
            counts, last = self.statuses_since(since)
            completed = counts.get("completed", 0)
            settled = completed + counts.get("failed", 0) + counts.get("closed", 0)
            if settled >= expected or time.monotonic() > deadline:
                return completed, last
            time.sleep(0.05)

    def process_status(self, process_id: str) -> str | None:
        assert self.db is not None
        rows = self.db.rows(
            "SELECT status FROM integration_process WHERE id = %s", [self.db.uuid(process_id)]
        )
        return rows[0][0] if rows else None

    # Measurements.

    def register(self, label: str, count: int, sizes: Sizes) -> http_load.LoadResult:
        run_id = uuid.uuid4().hex[:8]
        return _load(label, self.base, http_load.registrations(run_id, count), sizes, self.headers)

    def burst(self, label: str, count: int, timeout: float = 180) -> dict[str, Any]:
        """`count` registrations at once; completed per second from the first request to the
        last completion (the database's finish time)."""
        started = time.time()
        sent = http_load.load(
            label,
            self.base,
            http_load.registrations(uuid.uuid4().hex[:8], count),
            concurrency=CONCURRENCY,
            headers=self.headers,
            time_limit=60,
        )
        accepted = sent.statuses.count(202)
        completed, last = self.wait_settled(started, accepted, timeout)
        seconds = last - started
        per_second = completed / seconds if completed and seconds > 0 else 0.0
        log(
            f"{label}: {accepted} accepted, {completed} completed in {seconds:.1f} s"
            f" = {per_second:.1f}/s"
        )
        return {
            "accepted": accepted,
            "completed": completed,
            "seconds": seconds,
            "per_second": per_second,
        }

    def one_registration(self, count: int, time_limit: float = 30) -> list[float]:
        """Seconds from sending a registration to seeing its process completed, one at a time."""
        latencies: list[float] = []
        stop_at = time.monotonic() + time_limit
        for i in range(count):
            if time.monotonic() > stop_at:
                break
            job = http_load.registrations(f"single{uuid.uuid4().hex[:6]}", 1)[0]
            connection = _connection(self.base)
            started = time.perf_counter()
            status, body = job(connection, self.headers)
            connection.close()
            if status != 202:
                continue
            process_id = json.loads(body)["process_id"]
            deadline = stop_at + 5
            while (
                self.process_status(process_id) not in ("completed", "failed")
                and time.monotonic() < deadline
            ):
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
            if i < count - 1:
                time.sleep(0.3)
        return latencies

    def registered_clients(self) -> list[str]:
        """Clients whose registration has completed: details of the others would be a 404."""
        assert self.db is not None
        rows = self.db.rows(
            "SELECT client_id FROM integration_process"
            " WHERE kind = 'client_registration' AND status = 'completed'"
        )
        return [str(row[0]) for row in rows]

    def details(
        self, label: str, client_ids: list[str], count: int, sizes: Sizes
    ) -> http_load.LoadResult:
        reads = [
            http_load.call("GET", f"/api/v1/clients/{client_ids[i % len(client_ids)]}/")
            for i in range(count)
        ]
        return _load(label, self.base, reads, sizes, self.headers)

    def rss(self) -> dict[str, int]:
        assert self.web is not None and self.worker is not None
        return {"web": self.web.rss_bytes(), "worker": self.worker.rss_bytes()}


def _connection(base: str) -> Any:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)


def product_environment(
    services: Services, database: str, var_dir: Path, port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INTEGRATION_MODE", "WEB_WORKERS")}
    env.update(
        DATABASE_URL=database,
        VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        API_RATE_LIMIT="0",
        HOST="127.0.0.1",
        PORT=str(port),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    for name, value in (
        ("CELERY_BROKER_URL", services.product_broker),
        ("CELERY_RESULT_BACKEND", services.product_results),
    ):
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def product_figures(
    product: Product, bare: Bare, sizes: Sizes, budget: Budget
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The product's figures, and each one's baseline measured just before it."""
    results: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    product.start_web()
    _warm_up(product.base, [http_load.call("GET", "/healthz")])
    baselines["trivial"] = bare.trivial()
    results["healthz"] = _load(
        "product /healthz",
        product.base,
        [http_load.call("GET", "/healthz")] * sizes.requests,
        sizes,
    )
    # Accepting, workers stopped: the request commits its rows and publishes, nothing more.
    baselines["create"] = bare.create()
    accept_started = time.time()
    accepted = product.register("product accept (workers stopped)", sizes.accept, sizes)
    results["accept"] = accepted
    client_ids = [
        json.loads(b)["client_id"] for b in accepted.bodies if b.startswith(b'{"process_id')
    ]
    product.start_workers()
    drain_started = time.time()
    # The backlog is drained before anything else is measured: the details and bursts below
    # must not share the machine with it.
    completed, last = product.wait_settled(
        accept_started, len(client_ids), timeout=budget.allow(180, keep=SCALE_RESERVE + 300)
    )
    waited = time.time() - drain_started
    seconds = last - drain_started if completed == len(client_ids) else waited
    results["drain"] = {"accepted": len(client_ids), "completed": completed, "seconds": seconds}
    log(f"backlog of {len(client_ids)} registrations: {completed} completed in {seconds:.1f} s")
    client_ids = product.registered_clients() or client_ids
    product.details("warm-up details", client_ids, 50, sizes)

    results["rss_before"] = product.rss()
    memory_since = time.time()
    lookups = 0
    baselines["retrieve_orchestration"] = bare.retrieve()
    results["details_orchestration"] = product.details(
        "product details (orchestration)", client_ids, sizes.requests, sizes
    )
    lookups += results["details_orchestration"].count
    results["mode_switch_seconds"] = product.manage("integration_mode", "choreography")
    baselines["retrieve_choreography"] = bare.retrieve()
    results["details_choreography"] = product.details(
        "product details (choreography)", client_ids, sizes.requests, sizes
    )
    lookups += results["details_choreography"].count
    baselines["chain_choreography"] = bare.chain()
    results["burst_choreography"] = product.burst(
        "burst (choreography)", sizes.burst, timeout=budget.allow(120, keep=SCALE_RESERVE + 150)
    )
    results["single_choreography"] = product.one_registration(sizes.singles)
    product.manage("integration_mode", "orchestration")
    baselines["chain_orchestration"] = bare.chain()
    results["burst_orchestration"] = product.burst(
        "burst (orchestration)", sizes.burst, timeout=budget.allow(120, keep=SCALE_RESERVE + 40)
    )
    results["single_orchestration"] = product.one_registration(sizes.singles)

    # Memory: keep going until the targets or the time allotted to them (the rest is the
    # scale phase's).
    memory_deadline = time.monotonic() + min(
        sizes.memory_seconds, max(0.0, budget.left() - SCALE_RESERVE)
    )
    processes = sum(product.statuses_since(memory_since)[0].values())
    while processes < sizes.memory_processes and time.monotonic() < memory_deadline - 20:
        batch = min(500, sizes.memory_processes - processes)
        product.burst("memory batch", batch, timeout=max(5.0, memory_deadline - time.monotonic()))
        processes = sum(product.statuses_since(memory_since)[0].values())
    while lookups < sizes.memory_lookups and time.monotonic() < memory_deadline:
        batch = min(2000, sizes.memory_lookups - lookups)
        lookups += http_load.load(
            "memory lookups",
            product.base,
            [
                http_load.call("GET", f"/api/v1/clients/{client_ids[i % len(client_ids)]}/")
                for i in range(batch)
            ],
            concurrency=CONCURRENCY,
            headers=product.headers,
            time_limit=max(1.0, memory_deadline - time.monotonic()),
        ).count
    time.sleep(2)  # let the pools settle back
    results["rss_after"] = product.rss()
    results["memory_work"] = {"processes": processes, "lookups": lookups}
    log(
        f"memory: {processes} processes and {lookups} lookups between the two readings; "
        f"rss {results['rss_before']} → {results['rss_after']}"
    )
    return results, baselines


# --- scale ---------------------------------------------------------------------------------------


def scale_figures(services: Services, var_dir: Path, sizes: Sizes) -> dict[str, Any]:
    sets = {
        "small": (services.scale_small_db, sizes.scale_small),
        "large": (services.scale_db, sizes.scale_large),
    }
    results: dict[str, Any] = {}
    for label, (database, (clients, processes, entries)) in sets.items():
        env = product_environment(services, database, var_dir, 0)
        out, seconds = run_command(
            [
                PY,
                "manage.py",
                "load_scale_data",
                "--clients",
                str(clients),
                "--processes",
                str(processes),
                "--trace-entries",
                str(entries),
            ],
            env,
            timeout=900,
        )
        log(f"{out.strip()} (command {seconds:.1f} s)")
        switch = timed_command(
            [PY, "manage.py", "integration_mode", "choreography"], env, MODE_SWITCH_LIMIT
        )
        log(
            f"integration_mode choreography at {clients} clients: "
            + (f"{switch:.1f} s" if switch is not None else f"stopped after {MODE_SWITCH_LIMIT} s")
        )
        results[label] = {
            "clients": clients,
            "processes": processes,
            "trace_entries": entries,
            "load_seconds": seconds,
            "mode_switch_seconds": switch,
            "rounds": [],
        }
    # Small and large in turns, so that both sizes see the machine in the same state.
    for _ in range(SCALE_ROUNDS):
        for label, (database, (clients, processes, _entries)) in sets.items():
            results[label]["rounds"].append(
                scale_pages(services, database, var_dir, clients, processes, sizes.page_repeat)
            )
    for label, (database, _) in sets.items():
        results[label]["pages"] = merged_pages(results[label].pop("rounds"))
        for name, page in results[label]["pages"].items():
            log(
                f"  {label:5} {name:28} median {page['median_ms']:7.1f} ms"
                f"  best {page['best_ms']:7.1f} ms  {page['queries']} queries"
                f"  HTTP {page['status']}"
            )
        run_command(
            [PY, "manage.py", "integration_mode", "orchestration"],
            product_environment(services, database, var_dir, 0),
        )
    return results


def scale_pages(
    services: Services, database: str, var_dir: Path, clients: int, processes: int, repeat: int
) -> dict[str, Any]:
    out, _ = run_command(
        [
            PY,
            "-m",
            "benchmarks.scale_pages",
            "--client-number",
            str(min(500, clients // 2)),
            "--processes-per-client",
            str(processes // clients),
            "--repeat",
            str(repeat),
            "--mode",
            "choreography",
        ],
        product_environment(services, database, var_dir, 0),
        timeout=600,
    )
    pages: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return pages


def merged_pages(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each page's timings over every round: its median (what the ratio compares), its best, the
    largest query count seen, and the plans explained."""
    merged: dict[str, Any] = {}
    for name in rounds[0]:
        runs = [pages[name] for pages in rounds]
        timings = [ms for run in runs for ms in run["timings_ms"]]
        merged[name] = {
            "path": runs[0]["path"],
            "status": max(run["status"] for run in runs),
            "best_ms": min(timings),
            "median_ms": statistics.median(timings),
            "timings_ms": timings,
            "queries": max(run["queries"] for run in runs),
            "explain": [plan for run in runs for plan in run.get("explain", [])][:2],
        }
    return merged


# --- the table -----------------------------------------------------------------------------------


def figures_from(
    bare: dict[str, Any], product: dict[str, Any], scale: dict[str, Any]
) -> list[Figure]:
    figures: list[Figure] = []

    def http(
        name: str, measured: Any, baseline: Any, throughput: float | None, p99: float | None
    ) -> None:
        rule: Rule = "at_least" if throughput is not None else "info"
        figures.append(
            Figure(
                f"{name} req/s", measured.per_second, baseline.per_second, "req/s", rule, throughput
            )
        )
        figures.append(
            Figure(f"{name} p50", measured.percentile(50), baseline.percentile(50), "ms")
        )
        figures.append(
            Figure(
                f"{name} p99",
                measured.percentile(99),
                baseline.percentile(99),
                "ms",
                "at_most" if p99 is not None else "info",
                p99,
            )
        )

    if product:
        http("accept (POST /clients/, 202)", product["accept"], bare["create"], 0.50, 2.0)
        for mode, share in (("choreography", 0.70), ("orchestration", 0.25)):
            http(
                f"details, {mode}",
                product[f"details_{mode}"],
                bare[f"retrieve_{mode}"],
                share,
                3.0,
            )
        for mode in ("choreography", "orchestration"):
            figures.append(
                Figure(
                    f"burst of {product[f'burst_{mode}']['accepted']}: completed/s, {mode}",
                    product[f"burst_{mode}"]["per_second"],
                    bare[f"chain_{mode}"]["burst"]["per_second"],
                    "/s",
                    "at_least",
                    0.50,
                )
            )
        for mode in ("choreography", "orchestration"):
            singles = product[f"single_{mode}"]
            figures.append(
                Figure(
                    f"one registration end to end, {mode}",
                    statistics.median(singles) * 1000 if singles else float("nan"),
                    bare[f"chain_{mode}"]["single_median_seconds"] * 1000,
                    "ms",
                    "at_most",
                    2.0,
                )
            )
        http("/healthz vs trivial view", product["healthz"], bare["trivial"], None, None)
        work = product["memory_work"]
        for part in ("web", "worker"):
            figures.append(
                Figure(
                    f"{part} RSS after {work['processes']:,} processes"
                    f" + {work['lookups']:,} lookups",
                    product["rss_after"][part] / 2**20,
                    product["rss_before"][part] / 2**20,
                    "MiB",
                    "at_most",
                    1.10,
                )
            )
        figures.append(
            Figure(
                f"backlog drain: {product['drain']['completed']}/{product['drain']['accepted']}"
                " registrations completed (incl. worker start)",
                product["drain"]["completed"] / product["drain"]["seconds"]
                if product["drain"]["seconds"] > 0
                else float("nan"),
                None,
                "/s",
            )
        )
    if scale:
        small, large = scale["small"], scale["large"]
        size = f"{count_text(large['clients'])}/{count_text(small['clients'])}"
        for name, page in large["pages"].items():
            before = small["pages"][name]
            limit = SCALE_LIMITS_MS.get(name)
            figures.append(
                Figure(
                    f"{name} {size}" + (f" (under {limit:g} ms)" if limit else ""),
                    page["median_ms"],
                    before["median_ms"],
                    "ms",
                    "below" if limit else "at_most",
                    limit or 1.2,
                )
            )
            figures.append(
                Figure(f"{name} queries", page["queries"], before["queries"], "", "equal")
            )
        switch = large["mode_switch_seconds"]
        figures.append(
            Figure(
                f"integration_mode choreography at {large['clients']:,} clients"
                + ("" if switch is not None else f" (stopped at {MODE_SWITCH_LIMIT:g} s)"),
                switch if switch is not None else MODE_SWITCH_LIMIT,
                None,
                "s",
                "below",
                30.0,
            )
        )
        figures.append(
            Figure(
                f"load_scale_data to {large['clients']:,}/{large['processes']:,}"
                f"/{large['trace_entries']:,}",
                large["load_seconds"],
                None,
                "s",
            )
        )
    return figures


def count_text(number: int) -> str:
    return f"{number // 1000}k" if number >= 1000 and number % 1000 == 0 else str(number)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 2**20
    except OSError:
        memory = 0
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _serialisable(results: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, http_load.LoadResult):
            return {
                "label": value.label,
                "count": value.count,
                "seconds": value.elapsed,
                "per_second": value.per_second,
                "p50_ms": value.percentile(50),
                "p99_ms": value.percentile(99),
                "statuses": sorted(set(value.statuses)),
            }
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {k: convert(v) for k, v in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny numbers: checks the pieces work")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    budget = Budget(TIME_BUDGET)
    var_dir = args.out / "var"
    logs = args.out / "logs"
    var_dir.mkdir(parents=True, exist_ok=True)
    services = choose(dict(os.environ), var_dir)
    log(f"services: {services.describe()}")
    started = time.time()
    # Anything else running on the machine skews both sides; the load average says how much.
    load_at_start = os.getloadavg()
    bare_servers = Bare(services, sizes, logs)
    product = Product(services, var_dir, logs)
    try:
        bare_servers.start()
        product.prepare()
        measured, bare = product_figures(product, bare_servers, sizes, budget)
    finally:
        product.stop()
        bare_servers.stop()
    scale: dict[str, Any] = {}
    if not args.skip_scale:
        try:
            scale = scale_figures(services, var_dir, sizes)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            # What was measured before still makes its table.
            log(f"scale phase failed: {str(error)[:2000]}")
    figures = figures_from(bare, measured, scale)
    print()
    print(report.table(figures))
    context = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "machine": machine(),
        "services": services.describe(),
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "concurrency": CONCURRENCY,
        "bare": _serialisable(bare),
        "product": _serialisable(measured),
        "scale": scale,
        "log": LOG,
    }
    paths = report.write(args.out, figures, context)
    print(
        f"\nload average (1 min) {load_at_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end"
        f" on {os.cpu_count()} CPUs"
    )
    print(f"written: {', '.join(str(p) for p in paths.values())} ({context['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
