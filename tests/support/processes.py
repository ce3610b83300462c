"""Real Ensemble processes for tests: the web server and workers started as operators start them,
on the test database and the broker the test run uses."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
RUN_MARKER = "ENSEMBLE_TEST_RUN"  # in every child's environment: what this run started
LOG_DIR = ROOT / "var" / "test" / "logs"


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """The URL of the database this test run uses (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_environment(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "VAR_DIR": str(settings.VAR_DIR),
            "DEBUG": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            # A test switches the mode or pauses a component, then drives a child at once.
            "RECENT_MAX_AGE": "0",
            RUN_MARKER: str(os.getpid()),
        }
    )
    env.update(overrides)
    return env


class Process:
    """One child process in its own process group, with its output in a log file."""

    def __init__(self, label: str, command: list[str], env: dict[str, str]) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log_path = LOG_DIR / f"{label}-{os.getpid()}-{time.time_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        # The leader shuts its own pool down; the group is killed only if it lingers.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # nothing of the group survives
        self._log.close()
        return self.popen.returncode

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def pids_with_environment(name: str, value: str) -> list[int]:
    """Processes still running with NAME=VALUE in their environment (what a run left behind)."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_leftovers() -> list[int]:
    """Kill whatever this test run started and did not stop (a test that failed half-way)."""
    leftovers = pids_with_environment(RUN_MARKER, str(os.getpid()))
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return leftovers


def start_worker(
    components: str, env: dict[str, str], label: str = "worker", concurrency: int = 2
) -> Process:
    return Process(
        f"{label}-{components.replace(',', '+')}",
        [
            sys.executable,
            "manage.py",
            "run_worker",
            "--queues",
            components,
            "--concurrency",
            str(concurrency),
        ],
        env,
    )


def start_web(port: int, env: dict[str, str]) -> Process:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "h11",
        "--no-access-log",
        "--lifespan",
        "off",
    ]
    return Process("web", command, env)


def start_scheduler(env: dict[str, str]) -> Process:
    return Process("scheduler", [sys.executable, "manage.py", "run_scheduler"], env)


def wait_for_http(url: str, process: Process, timeout: float = 30) -> None:
    def answers() -> bool:
        if not process.alive():
            raise RuntimeError(f"{process.label} exited:\n{process.output()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
            return True
        return False

    wait_until(
        answers,
        timeout=timeout,
        interval=0.1,
        describe=lambda: f"{url} did not answer:\n{process.output()[-3000:]}",
    )


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()
