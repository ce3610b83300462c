"""Settings come from the environment; bad values stop start-up with one line naming them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import ConfigError, dotenv_read, dotenv_write, load

BASE = Path("/srv/ensemble")
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-0123456789abcdef",
    "ALLOWED_HOSTS": "crm.example.com, api.example.com",
}


def test_embedded_defaults_need_no_server() -> None:
    config = load({"DEBUG": "1"}, BASE)

    assert config.debug is True
    assert config.database["ENGINE"] == "django.db.backends.sqlite3"
    assert config.database["NAME"] == "/srv/ensemble/var/ensemble.sqlite3"
    assert config.database["TEST"] == {"NAME": "/srv/ensemble/var/test_ensemble.sqlite3"}
    assert config.database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config.database["OPTIONS"]["init_command"]
    assert config.broker_url == "filesystem://"
    assert config.broker_transport_options["data_folder_in"] == "/srv/ensemble/var/broker/messages"
    assert config.broker_transport_options["polling_interval"] == 0.02
    assert config.result_backend == "file:///srv/ensemble/var/results"
    assert config.channel_layer == {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    assert config.email["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert config.email["EMAIL_TIMEOUT"] == 10.0
    assert config.integration_mode is None
    assert config.allowed_hosts == ["127.0.0.1", "localhost", "[::1]"]
    assert (config.step_timeout, config.max_attempts) == (30.0, 8)
    assert (config.lookup_timeout, config.stuck_after) == (1.0, 300.0)
    assert config.api_rate_limit == "600/minute"
    assert config.secure_https is False


def test_real_services_from_urls() -> None:
    config = load(
        {
            **PRODUCTION,
            "DATABASE_URL": "postgres://app:pw@db.internal:6432/ensemble",
            "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
            "CHANNEL_LAYER_URL": "redis://127.0.0.1:6379/3",
            "EMAIL_URL": "smtp://mailer:secret@smtp.example.com:587",
            "INTEGRATION_MODE": "choreography",
            "ORCHESTRATOR_STEP_TIMEOUT": "2.5",
            "ORCHESTRATOR_MAX_ATTEMPTS": "3",
            "LOOKUP_TIMEOUT": "0.5",
            "STUCK_AFTER": "60",
            "API_RATE_LIMIT": "0",
            "EMAIL_TIMEOUT": "2.5",
        },
        BASE,
    )

    assert config.database["ENGINE"] == "django.db.backends.postgresql"
    assert (config.database["HOST"], config.database["PORT"]) == ("db.internal", 6432)
    assert (config.database["NAME"], config.database["USER"]) == ("ensemble", "app")
    assert config.database["OPTIONS"]["pool"]["max_size"] == 16
    assert config.broker_url == "amqp://guest:guest@127.0.0.1:5672//"
    assert config.result_backend == "rpc://"
    assert config.channel_layer["CONFIG"] == {"hosts": ["redis://127.0.0.1:6379/3"]}
    assert config.redis_url == "redis://127.0.0.1:6379/3"
    assert config.email["EMAIL_HOST"] == "smtp.example.com"
    assert config.email["EMAIL_PORT"] == 587
    assert config.email["EMAIL_TIMEOUT"] == 2.5  # Django's SMTP backend reads EMAIL_TIMEOUT
    assert config.integration_mode == "choreography"
    assert (config.step_timeout, config.max_attempts) == (2.5, 3)
    assert (config.lookup_timeout, config.stuck_after) == (0.5, 60.0)
    assert config.api_rate_limit is None
    assert config.allowed_hosts == ["crm.example.com", "api.example.com"]


def test_redis_broker_is_its_own_result_backend() -> None:
    config = load({"DEBUG": "1", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/2"}, BASE)

    assert config.result_backend == "redis://127.0.0.1:6379/2"
    assert config.broker_transport_options["visibility_timeout"] == 3600
    assert config.redis_url == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    ("environment", "variable"),
    [
        ({"DEBUG": "0"}, "SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({**PRODUCTION, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({**PRODUCTION, "DEBUG": "maybe"}, "DEBUG"),
        ({**PRODUCTION, "DATABASE_URL": "mysql://localhost/db"}, "DATABASE_URL"),
        ({**PRODUCTION, "DATABASE_URL": "postgres://localhost"}, "DATABASE_URL"),
        ({**PRODUCTION, "DATABASE_URL": "sqlite://:memory:"}, "DATABASE_URL"),
        ({**PRODUCTION, "CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL"),
        ({**PRODUCTION, "CELERY_RESULT_BACKEND": "mongodb://x"}, "CELERY_RESULT_BACKEND"),
        ({**PRODUCTION, "CHANNEL_LAYER_URL": "amqp://x"}, "CHANNEL_LAYER_URL"),
        ({**PRODUCTION, "INTEGRATION_MODE": "anarchy"}, "INTEGRATION_MODE"),
        ({**PRODUCTION, "EMAIL_URL": "pigeon://coop"}, "EMAIL_URL"),
        ({**PRODUCTION, "EMAIL_TIMEOUT": "0"}, "EMAIL_TIMEOUT"),
        ({**PRODUCTION, "EMAIL_TIMEOUT": "forever"}, "EMAIL_TIMEOUT"),
        ({**PRODUCTION, "SECURE_HTTPS": "yes please"}, "SECURE_HTTPS"),
        ({**PRODUCTION, "ORCHESTRATOR_STEP_TIMEOUT": "soon"}, "ORCHESTRATOR_STEP_TIMEOUT"),
        ({**PRODUCTION, "ORCHESTRATOR_STEP_TIMEOUT": "-1"}, "ORCHESTRATOR_STEP_TIMEOUT"),
        ({**PRODUCTION, "ORCHESTRATOR_MAX_ATTEMPTS": "2.5"}, "ORCHESTRATOR_MAX_ATTEMPTS"),
        ({**PRODUCTION, "ORCHESTRATOR_MAX_ATTEMPTS": "0"}, "ORCHESTRATOR_MAX_ATTEMPTS"),
        ({**PRODUCTION, "LOOKUP_TIMEOUT": "nan"}, "LOOKUP_TIMEOUT"),
        ({**PRODUCTION, "STUCK_AFTER": "0"}, "STUCK_AFTER"),
        ({**PRODUCTION, "API_RATE_LIMIT": "lots"}, "API_RATE_LIMIT"),
    ],
)
def test_bad_values_name_their_variable(environment: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(environment, BASE)

    assert raised.value.name == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert "\n" not in str(raised.value)


def _start_django(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **environment}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_stops_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = _start_django({"DEBUG": "0", "VAR_DIR": str(tmp_path)}, "check")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ensemble: configuration error: SECRET_KEY: required when DEBUG is off"
    ]


def test_a_command_meeting_an_unreachable_database_stops_with_one_line(tmp_path: Path) -> None:
    # a port nothing listens on: the pool gives up within its bounded waits
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    environment = {
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed_port}/nowhere",
    }

    # when an operator runs a command that reads it
    result = _start_django(environment, "integration_mode")

    # then it stops with one line saying so (after the pool's own log lines), no traceback
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == "ensemble: database unavailable: couldn't get a connection after 0.50 sec"


def test_deploy_check_is_clean_with_production_values(tmp_path: Path) -> None:
    environment = {
        **PRODUCTION,
        "SECRET_KEY": "k3y-" + "Zq9x!Lm2@Vb7#Rt5$Wn8%Hc4^" * 3,
        "SECURE_HTTPS": "1",
        "VAR_DIR": str(tmp_path),
    }
    result = _start_django(environment, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_make_runs_dotenv_gives_manage_py_the_development_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a checkout where `make run` wrote its .env once, and an environment without DEBUG
    monkeypatch.delenv("DEBUG", raising=False)
    assert dotenv_write(tmp_path) is True
    assert dotenv_write(tmp_path) is False  # an operator's own .env is never overwritten

    # when settings read it
    assert dotenv_read(tmp_path) is True

    # then DEBUG is on, so that `python manage.py <command>` starts as under `make run`
    assert os.environ["DEBUG"] == "1"
    assert load(os.environ, tmp_path).debug is True


def test_the_environment_wins_over_the_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEBUG", "0")
    dotenv_write(tmp_path)

    dotenv_read(tmp_path)

    assert os.environ["DEBUG"] == "0"


def test_without_a_dotenv_nothing_is_read(tmp_path: Path) -> None:
    assert dotenv_read(tmp_path) is False


def test_recent_max_age_may_be_zero_to_read_every_time() -> None:
    assert load({"DEBUG": "1", "RECENT_MAX_AGE": "0"}, BASE).recent_max_age == 0.0
    assert load({"DEBUG": "1"}, BASE).recent_max_age == 1.0
