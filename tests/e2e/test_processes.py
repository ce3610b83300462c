"""The real processes, started as operators start them, on this run's database and broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from integration.tasks import ping
from tests.support import processes
from tests.support.waiting import wait_until

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


def test_make_run_serves_a_registration_end_to_end_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path,
) -> None:
    # Given a fresh var/ folder: no database, no broker, nothing configured
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    port = processes.free_port()
    base = f"http://127.0.0.1:{port}"
    root = Path(__file__).resolve().parents[2]
    log = tmp_path / "run.log"
    with open(log, "w") as output:
        runall = subprocess.Popen(
            [sys.executable, "manage.py", "runall", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # When it has started, the login page answers
        wait_until_serving(f"{base}/accounts/login/", runall, log)
        # and a registration posted over HTTP completes with its trace
        token = _manage(root, env, "issue_api_token", "e2e").strip().splitlines()[-1]
        status, started = _post(f"{base}/api/v1/clients/", token, NEW_CLIENT)
        assert (status, started["mode"]) == (202, "orchestration")
        process = wait_for_completion(f"{base}{started['links']['process']}", token)
        # started, then per step its command and done (5 steps), the send, completed: 13
        assert [entry["seq"] for entry in process["trace"]] == list(range(1, 14))
        assert process["trace"][-1]["status"] == "completed"
        # Then Ctrl-C stops the web server, the worker and the scheduler, and nothing is left
        os.kill(runall.pid, signal.SIGINT)
        runall.wait(timeout=60)
    finally:
        if runall.poll() is None:
            os.killpg(runall.pid, signal.SIGKILL)
    printed = log.read_text()
    assert runall.returncode == 0, printed[-3000:]
    assert f"http://127.0.0.1:{port}/" in printed
    assert "marketing" in printed and "operations" in printed
    assert processes.pids_with_environment("VAR_DIR", env["VAR_DIR"]) == []


NEW_CLIENT = {
    "email": "e2e@example.com",
    "first_name": "End",
    "last_name": "ToEnd",
    "marketing_consent": True,
}


def wait_until_serving(url: str, runall: subprocess.Popen[bytes], log: Path) -> None:
    def serving() -> bool:
        assert runall.poll() is None, log.read_text()[-3000:]
        try:
            return _get(url)[0] == 200
        except OSError:
            return False

    wait_until(
        serving,
        timeout=120,
        interval=0.3,
        describe=lambda: f"{url} never answered:\n{log.read_text()[-3000:]}",
    )


def wait_for_completion(url: str, token: str) -> dict[str, Any]:
    body: dict[str, Any] = {}

    def completed() -> dict[str, Any] | None:
        nonlocal body
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        return body if body["status"] == "completed" else None

    return wait_until(
        completed, timeout=60, interval=0.2, describe=lambda: f"process not completed: {body}"
    )


def _post(url: str, token: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _manage(root: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_response_headers_keep_their_usual_casing(web_and_worker: str) -> None:
    request = urllib.request.Request(f"{web_and_worker}/api/v1/clients/", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        headers = dict(error.headers)  # a plain dict, as a naive client keeps them
    assert headers["WWW-Authenticate"] == "Bearer"
    assert headers["Content-Type"] == "application/problem+json"


def _connections_to_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


@pytest.mark.postgresql
def test_the_web_server_opens_its_database_connections_before_it_answers(
    child_env: dict[str, str],
) -> None:
    # /healthz touches no database: what is open when it first answers was opened at start-up,
    # one connection per request thread, so a first burst never waits on the pool filling up.
    before = _connections_to_this_database()
    port = processes.free_port()
    web = processes.start_web(port, {**child_env, "WEB_THREADS": "6"})
    with processes.running(web):
        processes.wait_for_http(f"http://127.0.0.1:{port}/healthz", web)
        opened = _connections_to_this_database() - before

    assert opened >= 6
