"""Which database and broker the bench uses, its own databases on them, and the processes it
starts (each in its own process group, with its output in a log file)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379"
# Redis database numbers of the bench's own: flushing them touches nobody else's queues.
PRODUCT_REDIS_DB = 13
BARE_REDIS_DB = 14


@dataclass(frozen=True)
class Services:
    """Where everything runs. URLs are full; `origin` says how they were chosen."""

    origin: str  # "environment", "local", "embedded"
    product_db: str
    scale_small_db: str  # the scale data set at 1,000 clients
    scale_db: str  # and at 100,000, the pages timed on both in turns
    bare_db: str
    product_broker: str | None  # None: the product's embedded default
    product_results: str | None
    bare_broker: str
    owns_broker: bool  # the bench may empty it

    @property
    def postgres(self) -> bool:
        return self.product_db.startswith("postgres")

    def describe(self) -> dict[str, str]:
        return {
            "origin": self.origin,
            "database": _hide_password(self.product_db),
            "broker": _hide_password(self.product_broker or "filesystem (embedded)"),
            "bare_broker": _hide_password(self.bare_broker),
        }


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def choose(env: dict[str, str], var_dir: Path) -> Services:
    """The environment's services, else local PostgreSQL/Redis when reachable, else the embedded
    defaults (SQLite files and the filesystem broker under var/bench)."""
    database = env.get("DATABASE_URL", "").strip()
    broker = env.get("CELERY_BROKER_URL", "").strip() or None
    results = env.get("CELERY_RESULT_BACKEND", "").strip() or None
    origin = "environment" if database or broker else "local"
    if not database and _reachable("127.0.0.1", 5432):
        database = LOCAL_POSTGRES
    if broker is None and _reachable("127.0.0.1", 6379):
        broker = f"{LOCAL_REDIS}/{PRODUCT_REDIS_DB}"
        owns_broker = True
    else:
        owns_broker = False
    if not database:
        origin = "embedded" if broker is None else origin
        return Services(
            origin=origin,
            product_db=f"sqlite:///{var_dir / 'ensemble_bench.sqlite3'}",
            scale_small_db=f"sqlite:///{var_dir / 'ensemble_bench_scale_small.sqlite3'}",
            scale_db=f"sqlite:///{var_dir / 'ensemble_bench_scale.sqlite3'}",
            bare_db=f"sqlite:///{var_dir / 'bench_bare.sqlite3'}",
            product_broker=broker,
            product_results=results,
            bare_broker=_bare_broker(broker, var_dir),
            owns_broker=owns_broker,
        )
    if database.startswith("sqlite"):
        base = Path(urlsplit(database).path).with_suffix("")
        return Services(
            origin=origin,
            product_db=f"sqlite:///{base}_bench.sqlite3",
            scale_small_db=f"sqlite:///{base}_bench_scale_small.sqlite3",
            scale_db=f"sqlite:///{base}_bench_scale.sqlite3",
            bare_db=f"sqlite:///{base}_bench_bare.sqlite3",
            product_broker=broker,
            product_results=results,
            bare_broker=_bare_broker(broker, var_dir),
            owns_broker=owns_broker,
        )
    # PostgreSQL: the bench's own databases beside the named one, never the named one itself.
    prefix = "ensemble" if database == LOCAL_POSTGRES else urlsplit(database).path.strip("/")
    return Services(
        origin=origin,
        product_db=_with_database(database, f"{prefix}_bench"),
        scale_small_db=_with_database(database, f"{prefix}_bench_scale_small"),
        scale_db=_with_database(database, f"{prefix}_bench_scale"),
        bare_db=_with_database(database, f"{prefix}_bench_bare"),
        product_broker=broker,
        product_results=results,
        bare_broker=_bare_broker(broker, var_dir),
        owns_broker=owns_broker,
    )


def _bare_broker(product_broker: str | None, var_dir: Path) -> str:
    """The same broker server as the product's, in a room of its own."""
    if product_broker is None:
        folder = var_dir / "bare-broker"
        folder.mkdir(parents=True, exist_ok=True)
        return f"filesystem://{folder}"
    parts = urlsplit(product_broker)
    if parts.scheme.startswith("redis"):
        return urlunsplit(parts._replace(path=f"/{BARE_REDIS_DB}"))
    return product_broker  # RabbitMQ: the bare chain has its own queue


def recreate_database(url: str) -> None:
    """An empty database at `url` (dropped first if it exists)."""
    if url.startswith("sqlite"):
        path = Path(urlsplit(url).path)
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()
        return
    name = urlsplit(url).path.strip("/")
    admin = _with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def clone_database(source: str, target: str) -> None:
    """`target` as a copy of `source` (freshly migrated, nothing connected to it)."""
    if source.startswith("sqlite"):
        recreate_database(target)
        shutil.copyfile(urlsplit(source).path, urlsplit(target).path)
        return
    name = urlsplit(target).path.strip("/")
    template = urlsplit(source).path.strip("/")
    with psycopg.connect(_with_database(source, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def empty_broker(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    client.flushdb()
    client.close()


class Database:
    """Plain queries against one database, PostgreSQL or SQLite, with `%s` placeholders."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            self.connection: Any = sqlite3.connect(urlsplit(url).path, timeout=30)
            self.connection.isolation_level = None
        else:
            self.connection = psycopg.connect(url, autocommit=True)

    def uuid(self, value: str) -> str:
        # Django keeps UUIDs on SQLite as 32 hex digits.
        return value.replace("-", "") if self.sqlite else value

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.sqlite:
            sql = sql.replace("%s", "?")
        return list(self.connection.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        return self.rows(sql, params)[0]

    def close(self) -> None:
        self.connection.close()


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A process the bench started, in its own process group; output goes to a log file."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log_path = log_dir / f"{label}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        # Whatever of the group lingers (pool children) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        self._log.close()

    def tail(self, characters: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-characters:]

    def rss_bytes(self) -> int:
        """Resident memory of the whole tree (shared pages counted in each process), `make`
        itself left out: the same measure before and after, which is what flat means here."""
        total = 0
        for pid in _descendants(self.popen.pid):
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{pid}/status").read_text()
                if "\nName:\tmake\n" in "\n" + status:
                    continue
                line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
                total += int(line.split()[1]) * 1024
        return total


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack and len(found) < 1000:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
