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
    api_rate_limit: str | None
    login_failure_limit: int
    login_lockout: int
    redis_url: str | None = field(default=None)


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
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 16, "timeout": 10}}
    config["ATOMIC_REQUESTS"] = False
    return config


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
    options: dict[str, Any] = {}
    if scheme.startswith("redis"):
        # A message not acknowledged within this time is delivered again; the database decides
        # whether it still needs doing, so an hour is only a backstop.
        options = {"visibility_timeout": 3600, "socket_connect_timeout": 1, "socket_timeout": 5}
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
        email=_email(env, var_dir),
        secure_https=_bool(env, "SECURE_HTTPS", False),
        step_timeout=_number(env, "ORCHESTRATOR_STEP_TIMEOUT", 30),
        max_attempts=_number(env, "ORCHESTRATOR_MAX_ATTEMPTS", 8, integer=True),
        lookup_timeout=_number(env, "LOOKUP_TIMEOUT", 1),
        stuck_after=_number(env, "STUCK_AFTER", 300),
        api_rate_limit=_rate(env),
        login_failure_limit=_number(env, "LOGIN_FAILURE_LIMIT", 5, integer=True),
        login_lockout=_number(env, "LOGIN_LOCKOUT", 900, integer=True),
        redis_url=redis_url,
    )
