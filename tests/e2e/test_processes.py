"""The real processes, started as operators start them, on this run's database and broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from integration.tasks import ping
from tests.support import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def web_and_worker(child_env: dict[str, str]) -> Iterator[str]:
    port = processes.free_port()
    web = processes.start_web(port, child_env)
    worker = processes.start_worker("crm,sales,marketing,correspondence,integration", child_env)
    base = f"http://127.0.0.1:{port}"
    with processes.running(web, worker):
        processes.wait_for_http(f"{base}/healthz", web)
        yield base


def _get(url: str) -> tuple[int, str, Message]:
    """Status, body and headers (looked up case-insensitively) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers


@pytest.mark.broker
def test_a_task_makes_the_round_trip_through_a_real_worker(web_and_worker: str) -> None:
    result = ping.apply_async(args=("round-trip",), queue="crm")

    assert result.get(timeout=30) == "pong:round-trip"


@pytest.mark.broker
def test_every_component_queue_is_consumed(web_and_worker: str) -> None:
    queues = ["crm", "sales", "marketing", "correspondence", "integration", "crm.lookup"]
    results = {queue: ping.apply_async(args=(queue,), queue=queue) for queue in queues}

    assert {queue: r.get(timeout=30) for queue, r in results.items()} == {
        queue: f"pong:{queue}" for queue in queues
    }


def test_health_and_readiness(web_and_worker: str) -> None:
    status, body, _ = _get(f"{web_and_worker}/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})

    status, body, _ = _get(f"{web_and_worker}/readyz")
    ready = json.loads(body)
    assert status == 200
    assert ready["status"] == "ok"
    assert {name: check["ok"] for name, check in ready["checks"].items()} == {
        "database": True,
        "broker": True,
    }


def test_login_page_admin_and_api_docs_are_served(web_and_worker: str) -> None:
    status, body, _ = _get(f"{web_and_worker}/accounts/login/")
    assert status == 200
    assert 'name="username"' in body and 'name="password"' in body

    status, _, headers = _get(f"{web_and_worker}/")
    assert status == 200  # followed the redirect to the login page
    status, schema, headers = _get(f"{web_and_worker}/api/schema/")
    assert status == 200
    assert schema.startswith("openapi: 3")

    status, docs, _ = _get(f"{web_and_worker}/api/docs/")
    assert status == 200
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower() and "unpkg" not in docs.lower()
    status, _, headers = _get(
        f"{web_and_worker}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    )
    assert status == 200
    assert "javascript" in headers["Content-Type"]


def test_make_run_serves_the_login_page_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    # Given a fresh var/ folder: no database, no broker, nothing configured
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    port = processes.free_port()
    root = Path(__file__).resolve().parents[2]
    runall = subprocess.Popen(
        [sys.executable, "manage.py", "runall", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    try:
        # When it has started
        status, _body = 0, ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status != 200:
            assert runall.poll() is None, runall.stdout.read() if runall.stdout else ""
            try:
                status, _body, _ = _get(f"http://127.0.0.1:{port}/accounts/login/")
            except OSError:
                time.sleep(0.3)
        assert status == 200
        # Then Ctrl-C stops the web server, the worker and the scheduler, and nothing is left
        os.kill(runall.pid, signal.SIGINT)
        output, _ = runall.communicate(timeout=60)
    finally:
        if runall.poll() is None:
            os.killpg(runall.pid, signal.SIGKILL)
    assert runall.returncode == 0, output
    assert f"http://127.0.0.1:{port}/" in output
    assert "marketing" in output and "operations" in output
    assert processes.pids_with_environment("VAR_DIR", env["VAR_DIR"]) == []
