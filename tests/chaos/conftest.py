"""The chaos suite: the real web server, workers and scheduler, started as operators start them,
with faults injected between them and the services they use.

Every test gets its own SMTP server; the broker tests get a broker of their own (a private
redis-server, or the environment's RabbitMQ behind a proxy); the database tests reach PostgreSQL
through a proxy that can cut. Children run with short timeouts (EMAIL_TIMEOUT,
ORCHESTRATOR_STEP_TIMEOUT) so that a fault shows, and heals, within seconds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery import Celery
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from shop_api.auth import token_issue
from tests.chaos.shop import Shop
from tests.support import faults, flows, processes

MODES = ["orchestration", "choreography"]
EMAIL_TIMEOUT = 2.0
STEP_TIMEOUT = 2.0
COMMAND_QUEUES = flows.ALL.split(",")


# --- the services the faults are made of --------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[faults.SmtpServer]:
    server = faults.SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Broker:
    """A broker for one test. `kill`/`restart`: it is gone, then back (a Redis comes back empty);
    `pause`/`resume`: it holds connections and answers nothing; `close_connections`: it drops
    every client connection and keeps running."""

    url: str
    result_backend: str
    kill: Callable[[], None]
    restart: Callable[[], None]
    pause: Callable[[], None]
    resume: Callable[[], None]
    close_connections: Callable[[], Any]


@pytest.fixture
def broker() -> Iterator[Broker]:
    """RabbitMQ behind a proxy when the run's broker is amqp://, else a private redis-server."""
    if urlsplit(settings.CELERY_BROKER_URL).scheme in ("amqp", "amqps", "pyamqp"):
        parts = urlsplit(settings.CELERY_BROKER_URL)
        proxy = faults.TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
        proxy.start()
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        url = urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))
        yield Broker(
            url=url,
            result_backend="rpc://",
            kill=proxy.cut,
            restart=proxy.restore,
            pause=proxy.freeze,
            resume=proxy.thaw,
            close_connections=proxy.drop_connections,
        )
        proxy.stop()
        return
    redis = faults.RedisServer()
    redis.start()
    yield Broker(
        url=redis.url(0),
        result_backend=redis.url(0),
        kill=redis.kill,
        restart=redis.restart,
        pause=redis.pause,
        resume=redis.resume,
        close_connections=redis.close_connections,
    )
    redis.stop()


@pytest.fixture
def database_proxy(transactional_db: Any) -> Iterator[faults.TcpProxy]:
    """A proxy in front of this run's PostgreSQL; `proxied_database_url` goes through it."""
    db = connection.settings_dict
    proxy = faults.TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    yield proxy
    proxy.stop()


def proxied_database_url(proxy: faults.TcpProxy) -> str:
    parts = urlsplit(processes.database_url())
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


# --- the product, started for one test ----------------------------------------------------------


@pytest.fixture
def mode(request: pytest.FixtureRequest, transactional_db: Any) -> str:
    """The mode new processes start in (parametrize with indirect=True; orchestration else)."""
    chosen = getattr(request, "param", "orchestration")
    call_command("integration_mode", chosen, stdout=io.StringIO())
    return chosen


@pytest.fixture
def chaos_env(child_env: dict[str, str], smtp: faults.SmtpServer) -> dict[str, str]:
    """The children's environment: this test's SMTP server and short timeouts."""
    return {
        **child_env,
        "EMAIL_URL": smtp.url,
        "EMAIL_TIMEOUT": f"{EMAIL_TIMEOUT:g}",
        "ORCHESTRATOR_STEP_TIMEOUT": f"{STEP_TIMEOUT:g}",
        "ORCHESTRATOR_MAX_ATTEMPTS": "8",
        "LOOKUP_TIMEOUT": "1",
    }


@dataclass
class Stack:
    env: dict[str, str]
    shop: Shop
    web: processes.Process | None
    worker: processes.Process | None
    scheduler: processes.Process | None

    def start_worker(self) -> processes.Process:
        """Another `make worker` on the same environment (after the first was stopped)."""
        worker = processes.start_worker(flows.ALL, self.env)
        self.worker = worker
        _started.append(worker)
        wait_for_workers(self.env, worker)
        return worker

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.label} ---\n{p.output()[-4000:]}"
            for p in (self.web, self.worker, self.scheduler)
            if p is not None
        )


_started: list[processes.Process] = []


@pytest.fixture
def launch(transactional_db: Any) -> Iterator[Callable[..., Stack]]:
    """Start the web server, a worker for every queue and the scheduler on an environment, and
    wait until they serve. Everything started is stopped when the test ends."""

    def start(env: dict[str, str], *, scheduler: bool = True) -> Stack:
        port = processes.free_port()
        web = processes.start_web(port, env)
        worker = processes.start_worker(flows.ALL, env)
        sweeper = processes.start_scheduler(env) if scheduler else None
        _started.extend(p for p in (web, worker, sweeper) if p is not None)
        base = f"http://127.0.0.1:{port}"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            served = pool.submit(processes.wait_for_http, f"{base}/healthz", web, 60)
            consumed = pool.submit(wait_for_workers, env, worker)
            served.result()
            consumed.result()
        token = token_issue(name=f"chaos-{port}").raw
        return Stack(env=env, shop=Shop(base, token), web=web, worker=worker, scheduler=sweeper)

    yield start
    while _started:
        _started.pop().stop()


def wait_for_workers(env: dict[str, str], worker: processes.Process, timeout: float = 90) -> None:
    """Every command queue answers a ping through the broker the children use."""
    broker_url = env.get("CELERY_BROKER_URL") or settings.CELERY_BROKER_URL
    if broker_url == settings.CELERY_BROKER_URL:
        try:
            flows.wait_for_workers(COMMAND_QUEUES, timeout=timeout)
        except Exception as error:
            raise AssertionError(f"not consuming:\n{worker.output()[-3000:]}") from error
        return
    # Celery reads CELERY_BROKER_URL and CELERY_RESULT_BACKEND from the environment before its
    # own configuration: the probe sees the children's values while it runs.
    with _environment(
        CELERY_BROKER_URL=broker_url, CELERY_RESULT_BACKEND=env.get("CELERY_RESULT_BACKEND")
    ):
        probe = Celery("chaos-probe", broker=broker_url, backend=env.get("CELERY_RESULT_BACKEND"))
        try:
            results = [
                probe.send_task("integration.ping", args=(queue,), queue=queue)
                for queue in COMMAND_QUEUES
            ]
            for result in results:
                result.get(timeout=timeout)
                result.forget()
        except Exception as error:
            raise AssertionError(f"not consuming:\n{worker.output()[-3000:]}") from error
        finally:
            probe.close()


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in names}
