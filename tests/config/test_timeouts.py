"""Every wait is bounded (DESIGN rule 11): PostgreSQL sessions, the pool, Redis, Celery tasks.

The first tests read the configuration; the last ones connect, as the product does, to a
PostgreSQL that refuses or never answers, and time how long a request would wait.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connections
from django.db.utils import ConnectionHandler

from common.pool import open_database_pool
from config import env
from config.env import POOL_TIMEOUT, ConfigError, load
from tests.support.outages import closed_port, silent_listener

BASE = Path("/srv/ensemble")
POSTGRES = {"DEBUG": "1", "DATABASE_URL": "postgres://app:secret@127.0.0.1:5432/ensemble"}


def test_postgresql_sessions_and_the_pool_have_timeouts() -> None:
    config = load(POSTGRES, BASE)

    assert config.database["OPTIONS"] == {
        "pool": {"min_size": 1, "max_size": 16, "timeout": 0.5},
        "connect_timeout": 2,
        "options": "-c lock_timeout=5000 -c statement_timeout=30000 "
        "-c idle_in_transaction_session_timeout=60000",
        "server_side_binding": True,
        "prepare_threshold": 5,
    }


@pytest.mark.parametrize(
    ("seconds", "options"),
    [
        ("10", "-c lock_timeout=5000 -c statement_timeout=10000"),
        ("2.5", "-c lock_timeout=2500 -c statement_timeout=2500"),
    ],
)
def test_the_statement_timeout_comes_from_the_environment_and_bounds_the_lock_wait(
    seconds: str, options: str
) -> None:
    config = load({**POSTGRES, "DATABASE_STATEMENT_TIMEOUT": seconds}, BASE)

    assert config.database["OPTIONS"]["options"] == (
        f"{options} -c idle_in_transaction_session_timeout=60000"
    )


def test_a_bad_statement_timeout_stops_start_up_naming_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load({**POSTGRES, "DATABASE_STATEMENT_TIMEOUT": "soon"}, BASE)

    assert str(raised.value) == (
        "DATABASE_STATEMENT_TIMEOUT: expected a number of seconds, got 'soon'"
    )


def test_sqlite_keeps_its_busy_timeout() -> None:
    config = load({"DEBUG": "1"}, BASE)

    assert config.database["OPTIONS"]["timeout"] == 30
    assert "options" not in config.database["OPTIONS"]


def test_a_redis_broker_connects_once_with_short_socket_timeouts() -> None:
    config = load({"DEBUG": "1", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/2"}, BASE)

    assert config.broker_transport_options == {
        "max_retries": 0,
        "visibility_timeout": 3600,
        "socket_connect_timeout": 0.5,
        "socket_timeout": 0.5,
    }


def test_a_rabbitmq_broker_connects_once() -> None:
    config = load({"DEBUG": "1", "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}, BASE)

    assert config.broker_transport_options == {"max_retries": 0}


def test_celery_tasks_end_before_redis_would_deliver_them_again() -> None:
    assert (settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT) == (60, 90)
    assert settings.CELERY_TASK_TIME_LIMIT < env.VISIBILITY_TIMEOUT
    assert settings.CELERY_BROKER_CONNECTION_TIMEOUT == 0.5


def test_the_result_backend_gives_up_after_one_short_retry() -> None:
    assert (settings.CELERY_REDIS_SOCKET_TIMEOUT, settings.CELERY_REDIS_SOCKET_CONNECT_TIMEOUT) == (
        0.5,
        0.5,
    )
    assert settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS == {
        "retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        }
    }


# --- a PostgreSQL that is not there -----------------------------------------------------------


@contextlib.contextmanager
def postgresql_at(port: int, django_db_blocker: Any) -> Iterator[Any]:
    """A connection configured as the product configures one, to 127.0.0.1:<port>."""
    url = f"postgres://app:secret@127.0.0.1:{port}/ensemble"
    database = load({"DEBUG": "1", "DATABASE_URL": url}, BASE).database
    # Its own alias: Django keeps one pool per alias, and "default" is the test run's own.
    handler = ConnectionHandler({"default": database, "unreachable": database})
    wrapper: Any = handler["unreachable"]
    try:
        with django_db_blocker.unblock():
            yield wrapper
    finally:
        wrapper.close_pool()


@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_a_request_waits_for_an_unreachable_postgresql_at_most_the_pool_timeout(
    server: str, django_db_blocker: Any
) -> None:
    with contextlib.ExitStack() as stack:
        port = closed_port() if server == "refusing" else stack.enter_context(silent_listener())
        wrapper = stack.enter_context(postgresql_at(port, django_db_blocker))

        started = time.monotonic()
        with pytest.raises(OperationalError) as raised:
            wrapper.ensure_connection()
        seconds = time.monotonic() - started

    assert f"couldn't get a connection after {POOL_TIMEOUT:.2f} sec" in str(raised.value)
    assert seconds < POOL_TIMEOUT + 0.5


@pytest.mark.django_db
def test_the_web_server_opens_every_pooled_connection_before_its_first_request() -> None:
    database = {**connections["default"].settings_dict}  # the test run's own database
    pooled = database["ENGINE"].endswith("postgresql")
    if pooled:
        database["OPTIONS"] = {**database["OPTIONS"], "pool": {"min_size": 3, "max_size": 5}}
    wrapper: Any = ConnectionHandler({"default": database, "warmed": database})["warmed"]
    opened = open_database_pool(wrapper, timeout=10)
    available = wrapper.pool.get_stats()["pool_available"] if pooled else None
    if pooled:
        wrapper.close_pool()

    # PostgreSQL: all three connections are open; SQLite keeps no pool, so there is nothing to do.
    assert (opened, available) == (True, 3 if pooled else None)


@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_a_database_down_at_start_up_delays_the_web_server_at_most_the_open_timeout(
    server: str, django_db_blocker: Any
) -> None:
    with contextlib.ExitStack() as stack:
        port = closed_port() if server == "refusing" else stack.enter_context(silent_listener())
        wrapper = stack.enter_context(postgresql_at(port, django_db_blocker))

        started = time.monotonic()
        opened = open_database_pool(wrapper, timeout=0.3)
        seconds = time.monotonic() - started
        # and the pool is still there for when the database comes back: a request meets the
        # pool's own timeout, not a pool closed for good
        with pytest.raises(OperationalError) as raised:
            wrapper.ensure_connection()

    assert opened is False
    assert seconds < 0.3 + 0.5
    assert f"couldn't get a connection after {POOL_TIMEOUT:.2f} sec" in str(raised.value)
