"""`make run`: the whole product in the foreground on one machine.

Migrates, loads the demo data once, then runs the web server, one worker for every component queue
and the scheduler as child processes. SIGINT or SIGTERM stops them all; so does any of them dying.
Each child runs in its own process group, which is signalled whole, so no grandchild (Celery's pool
processes, uvicorn's workers) is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from staff.demo import DEMO_PASSWORD, DEMO_USERS

GRACE_SECONDS = 10


class Command(BaseCommand):
    help = "Migrate, load demo data once, and run web + worker + scheduler until Ctrl-C."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_demo_data")
        if not settings.DEBUG:
            call_command("collectstatic", interactive=False, verbosity=0)
        call_command("integration_mode", from_environment=True)
        url = f"http://{options['host']}:{options['port']}/"
        self._announce(url)
        children = self._start(options["host"], str(options["port"]))
        code = self._supervise(children)
        sys.exit(code)

    def _announce(self, url: str) -> None:
        self.stdout.write(f"Ensemble is starting at {url}")
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD!r}):")
        for username, team in DEMO_USERS:
            self.stdout.write(f"  {username:<11} {team}")
        self.stdout.write("Press Ctrl-C to stop.")

    def _start(self, host: str, port: str) -> dict[str, subprocess.Popen[bytes]]:
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                host,
                "--port",
                port,
                "--http",
                "h11",
                "--no-access-log",
                "--lifespan",
                "off",
                "--timeout-graceful-shutdown",
                "5",
            ],
            "worker": [python, "manage.py", "run_worker"],
            "scheduler": [python, "manage.py", "run_scheduler"],
        }
        return {
            name: subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
            for name, command in commands.items()
        }

    def _supervise(self, children: dict[str, subprocess.Popen[bytes]]) -> int:
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with {child.returncode}; stopping the rest")
                    code, stopping = 1, True
                    break
            time.sleep(0.2)
        self.stdout.write("Stopping web, worker and scheduler…")
        self._stop(children)
        return code

    @staticmethod
    def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
        for child in children.values():
            # The leader shuts its own pool or workers down; the group is killed only if it lingers.
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in children.values():
            # Whatever is left in a group (a pool process that ignored SIGTERM) is killed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2)
