"""Reads Ensemble's configuration from the environment.

Everything operations.md lists is parsed and validated here, away from Django's settings module,
so that it can be tested with any mapping. A value that is missing or malformed raises
`ConfigError`, whose message is one line naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ

MODES = ("orchestration", "choreography")
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem", "memory")
# Waits on PostgreSQL, in seconds (DESIGN rule 11). A lock wait longer than a few seconds means
# a stuck holder: fail and retry rather than queue behind it. A transaction idle for a minute
# belongs to a process that stalled; its locks are given back.
POOL_TIMEOUT = 0.5  # a request may meet the pool twice (its work, then its error path)
CONNECT_TIMEOUT = 2
LOCK_TIMEOUT = 5.0
IDLE_IN_TRANSACTION_TIMEOUT = 60.0
# Waits on Redis and on Celery tasks, in seconds: see _broker and config/settings.py.
REDIS_SOCKET_TIMEOUT = 0.5
TASK_SOFT_TIME_LIMIT = 60
TASK_TIME_LIMIT = 90
VISIBILITY_TIMEOUT = 3600
RATE_RE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


class ConfigError(Exception):
    """A setting that stops start-up; str() is the one line shown to the operator."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


@dataclass(frozen=True)
class Config:
    base_dir: Path
    var_dir: Path
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    database: dict[str, Any]
    broker_url: str
    broker_transport_options: dict[str, Any]
    result_backend: str
    channel_layer: dict[str, Any]
    integration_mode: str | None
    email: dict[str, Any]
    secure_https: bool
    step_timeout: float
    max_attempts: int
    lookup_timeout: float
    stuck_after: float
    recent_max_age: float
    api_rate_limit: str | None
    login_failure_limit: int
    login_lockout: int
    redis_url: str | None = field(default=None)
    worker_crash_limit: int = field(default=3)
    reconcile_interval: float = field(default=3600.0)
    metrics_token: str | None = field(default=None)


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected 1 or 0, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> Any:
    raw = _get(env, name)
    if raw is None:
        return int(default) if integer else float(default)
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number of seconds"
        raise ConfigError(name, f"expected {kind}, got {raw!r}") from None
    if value <= 0 or value != value or value == float("inf"):
        raise ConfigError(name, f"must be greater than 0, got {raw!r}")
    return value


def _database(env: Mapping[str, str], var_dir: Path) -> dict[str, Any]:
    raw = _get(env, "DATABASE_URL") or f"sqlite:///{var_dir / 'ensemble.sqlite3'}"
    scheme = urlsplit(raw).scheme
    if scheme not in ("postgres", "postgresql", "sqlite"):
        raise ConfigError("DATABASE_URL", f"expected postgres://… or sqlite:///…, got {scheme!r}")
    config: dict[str, Any] = environ.Env.db_url_config(raw)
    if scheme == "sqlite":
        name = config["NAME"]
        if not name or name == ":memory:":
            raise ConfigError(
                "DATABASE_URL", "SQLite needs a file path (worker processes share it)"
            )
        path = Path(name) if Path(name).is_absolute() else var_dir.parent / name
        config.update(
            NAME=str(path),
            OPTIONS={
                # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock at
                # BEGIN so that two writers queue on the busy timeout instead of deadlocking.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            TEST={"NAME": str(path.with_name(f"test_{path.name}"))},
        )
    else:
        if not config.get("NAME"):
            raise ConfigError("DATABASE_URL", "names no database")
        pool_min = _number(env, "DATABASE_POOL_MIN_SIZE", 1, integer=True)
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config["OPTIONS"] = {
            # A request waits at most POOL_TIMEOUT for a connection, so that an unreachable
            # database is a 503 within the shop API's 2 s; libpq will not wait less than 2 s
            # for a connection attempt (the pool makes those in the background).
            # Connections kept open: the web server keeps one per request thread (config/asgi.py),
            # so that a burst never waits on the pool opening them one at a time, and four more
            # for its background threads.
            "pool": {
                "min_size": pool_min,
                "max_size": max(16, pool_min + 4),
                "timeout": POOL_TIMEOUT,
            },
            "connect_timeout": CONNECT_TIMEOUT,
            "options": _session_timeouts(env),
            # Statements prepared on each connection once run five times (psycopg's default,
            # which Django turns off for the sake of external poolers; ours is in process):
            # PostgreSQL then skips parsing and planning the hot paths' statements. PostgreSQL's
            # CPU per orchestrated registration went from 12.6-17.6 to 8.8-10.4 ms.
            "server_side_binding": True,
            "prepare_threshold": 5,
        }
    config["ATOMIC_REQUESTS"] = False
    return config


def _session_timeouts(env: Mapping[str, str]) -> str:
    """libpq `options` that bound every wait inside a PostgreSQL session: a lock held by a hung
    transaction, a runaway statement, a transaction left open by a stalled process."""
    statement = _number(env, "DATABASE_STATEMENT_TIMEOUT", 30)
    lock = min(LOCK_TIMEOUT, statement)  # waiting for a lock is part of a statement
    idle = IDLE_IN_TRANSACTION_TIMEOUT
    return " ".join(
        f"-c {name}={round(seconds * 1000)}"
        for name, seconds in (
            ("lock_timeout", lock),
            ("statement_timeout", statement),
            ("idle_in_transaction_session_timeout", idle),
        )
    )


def _broker(env: Mapping[str, str], var_dir: Path) -> tuple[str, dict[str, Any]]:
    raw = _get(env, "CELERY_BROKER_URL")
    if raw is None:
        folder = var_dir / "broker"
        return "filesystem://", {
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "control_folder": str(folder / "control"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # The default 1 s poll makes every hop slow; 20 ms keeps a hop near 25 ms.
            "polling_interval": 0.02,
        }
    scheme = urlsplit(raw).scheme
    if scheme not in BROKER_SCHEMES:
        raise ConfigError("CELERY_BROKER_URL", f"expected redis://… or amqp://…, got {scheme!r}")
    # One connection attempt per publish (kombu would retry for the connect timeout): the relay
    # publishes without retry and leaves what failed to the sweeper.
    options: dict[str, Any] = {"max_retries": 0}
    if scheme.startswith("redis"):
        options = {
            **options,
            # A message not acknowledged within this time is delivered again; the database
            # decides whether it still needs doing, so this is only a backstop. It stays well
            # above the tasks' hard time limit, so a running task is never delivered twice.
            "visibility_timeout": VISIBILITY_TIMEOUT,
            # Redis answers in well under a millisecond; one that accepts connections and says
            # nothing (paused, overloaded) must not hold a request past the shop API's 1 s.
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
        }
    return raw, options


def _result_backend(env: Mapping[str, str], broker_url: str, var_dir: Path) -> str:
    raw = _get(env, "CELERY_RESULT_BACKEND")
    if raw is not None:
        scheme = urlsplit(raw).scheme
        if scheme not in ("redis", "rediss", "rpc", "file", "cache"):
            raise ConfigError("CELERY_RESULT_BACKEND", f"unsupported backend {scheme!r}")
        return raw
    scheme = urlsplit(broker_url).scheme
    if scheme.startswith("redis"):
        return broker_url
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "rpc://"
    return f"file://{var_dir / 'results'}"


def _channel_layer(env: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    raw = _get(env, "CHANNEL_LAYER_URL")
    if raw is None:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}, None
    if urlsplit(raw).scheme not in ("redis", "rediss"):
        raise ConfigError("CHANNEL_LAYER_URL", "expected redis://…")
    layer = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [raw]},
    }
    return layer, raw


def _email(env: Mapping[str, str], var_dir: Path) -> dict[str, Any]:
    raw = _get(env, "EMAIL_URL")
    if raw is None:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(var_dir / "mail"),
        }
    scheme = urlsplit(raw).scheme
    if scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "file":
        path = urlsplit(raw).path or str(var_dir / "mail")
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": path,
        }
    if scheme == "memory":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme in ("smtp", "smtps", "smtp+tls", "smtp+ssl"):
        config: dict[str, Any] = environ.Env.email_url_config(raw)
        return config
    raise ConfigError("EMAIL_URL", f"expected smtp://…, console: or file:/path, got {scheme!r}")


def _email_settings(env: Mapping[str, str], var_dir: Path) -> dict[str, Any]:
    """Where email goes, and Django's EMAIL_TIMEOUT: how long each exchange with the SMTP server
    may wait, so that a hung server is a failed send, retried, never a frozen worker."""
    return {**_email(env, var_dir), "EMAIL_TIMEOUT": _number(env, "EMAIL_TIMEOUT", 10)}


def _interval_or_off(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds (between runs of periodic work, or of reuse); 0 turns it off."""
    if _get(env, name) == "0":
        return 0.0
    return float(_number(env, name, default))


def _rate(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "API_RATE_LIMIT")
    if raw is None:
        return "600/minute"
    if raw == "0":
        return None
    if not RATE_RE.match(raw):
        raise ConfigError("API_RATE_LIMIT", f"expected a rate such as 600/minute or 0, got {raw!r}")
    return raw


def _mode(env: Mapping[str, str]) -> str | None:
    raw = _get(env, "INTEGRATION_MODE")
    if raw is not None and raw not in MODES:
        raise ConfigError(
            "INTEGRATION_MODE", f"expected orchestration or choreography, got {raw!r}"
        )
    return raw


def _secrets(env: Mapping[str, str], debug: bool) -> tuple[str, list[str]]:
    secret = _get(env, "SECRET_KEY")
    hosts_raw = _get(env, "ALLOWED_HOSTS")
    if not debug:
        if secret is None:
            raise ConfigError("SECRET_KEY", "required when DEBUG is off")
        if secret.startswith("django-insecure") or len(secret) < 32:
            raise ConfigError("SECRET_KEY", "too weak: use at least 32 random characters")
        if hosts_raw is None:
            raise ConfigError("ALLOWED_HOSTS", "required when DEBUG is off (comma-separated)")
    hosts = [h.strip() for h in (hosts_raw or "").split(",") if h.strip()]
    if debug and not hosts:
        hosts = ["127.0.0.1", "localhost", "[::1]"]
    return secret or "django-insecure-development-only-key-never-in-production", hosts


DOTENV_NAME = ".env"
DOTENV_TEXT = """\
# Written once by `make run`: development settings, so that every `python manage.py` command
# works on this checkout as it does under `make run`. Variables set in the environment win.
# Production never has this file: it sets its variables in the environment.
DEBUG=1
"""


def dotenv_read(base_dir: Path) -> bool:
    """Put the checkout's development `.env` (when `make run` wrote one) under the environment:
    what the environment sets already wins. True when there was one."""
    path = base_dir / DOTENV_NAME
    if not path.is_file():
        return False
    environ.Env.read_env(str(path), overwrite=False)
    return True


def dotenv_write(base_dir: Path) -> bool:
    """`make run`: write the development `.env` unless the checkout has one. True when written."""
    path = base_dir / DOTENV_NAME
    if path.exists():
        return False
    path.write_text(DOTENV_TEXT)
    return True


def load(env: Mapping[str, str], base_dir: Path) -> Config:
    """Parse the whole configuration; raises ConfigError on the first bad variable."""
    debug = _bool(env, "DEBUG", False)
    var_dir = Path(_get(env, "VAR_DIR") or base_dir / "var")
    secret_key, allowed_hosts = _secrets(env, debug)
    broker_url, transport_options = _broker(env, var_dir)
    channel_layer, layer_url = _channel_layer(env)
    redis_url = layer_url or (broker_url if broker_url.startswith("redis") else None)
    return Config(
        base_dir=base_dir,
        var_dir=var_dir,
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        database=_database(env, var_dir),
        broker_url=broker_url,
        broker_transport_options=transport_options,
        result_backend=_result_backend(env, broker_url, var_dir),
        channel_layer=channel_layer,
        integration_mode=_mode(env),
        email=_email_settings(env, var_dir),
        secure_https=_bool(env, "SECURE_HTTPS", False),
        step_timeout=_number(env, "ORCHESTRATOR_STEP_TIMEOUT", 30),
        max_attempts=_number(env, "ORCHESTRATOR_MAX_ATTEMPTS", 8, integer=True),
        worker_crash_limit=_number(env, "WORKER_CRASH_LIMIT", 3, integer=True),
        lookup_timeout=_number(env, "LOOKUP_TIMEOUT", 1),
        stuck_after=_number(env, "STUCK_AFTER", 300),
        recent_max_age=_interval_or_off(env, "RECENT_MAX_AGE", 1),
        reconcile_interval=_interval_or_off(env, "RECONCILE_INTERVAL", 3600),
        api_rate_limit=_rate(env),
        login_failure_limit=_number(env, "LOGIN_FAILURE_LIMIT", 5, integer=True),
        login_lockout=_number(env, "LOGIN_LOCKOUT", 900, integer=True),
        redis_url=redis_url,
        metrics_token=_get(env, "METRICS_TOKEN"),
    )
