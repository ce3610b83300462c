"""`make worker QUEUES=crm,sales`: the Celery workers of those components.

Each component is two broker queues: its commands and events (`crm`) and its lookups
(`crm.lookup`). They get two worker processes: a pool for commands and events, and a small thread
pool of its own for lookups, so that however long the backlog of commands, a details lookup is
answered at once (a busy component does not look down).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.celery import COMPONENTS, app, lookup_queue

GRACE_SECONDS = 20
ROLES = ("commands", "lookups")
RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
HEALTHY_AFTER = 60.0  # seconds a restarted worker runs before its next restart is quick again

logger = logging.getLogger(__name__)


def parse_components(raw: str) -> list[str]:
    components = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown or not components:
        raise CommandError(
            f"unknown queue {', '.join(unknown) or '(none)'}; choose from {', '.join(COMPONENTS)}"
        )
    return components


class Command(BaseCommand):
    help = "Run the Celery workers (commands and lookups) of the given components."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--queues", default=",".join(COMPONENTS))
        parser.add_argument(
            "--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4"))
        )
        parser.add_argument("--loglevel", default=os.environ.get("LOG_LEVEL", "INFO"))
        parser.add_argument("--role", choices=["both", "commands", "lookups"], default="both")

    def handle(self, *args: Any, **options: Any) -> None:
        components = parse_components(options["queues"])
        if options["role"] == "both":
            sys.exit(self._supervise(options))
        lookups = options["role"] == "lookups"
        queues = [lookup_queue(c) for c in components] if lookups else components
        name = f"{options['role']}.{'+'.join(components)}.{os.getpid()}@{socket.gethostname()}"
        pool = (
            ["--pool=threads", "--concurrency=4"]
            if lookups
            else [f"--concurrency={options['concurrency']}"]
        )
        app.worker_main(
            [
                "worker",
                f"--queues={','.join(queues)}",
                *pool,
                f"--loglevel={options['loglevel']}",
                f"--hostname={name}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )

    def _supervise(self, options: dict[str, Any]) -> int:
        """Run both workers until a signal stops them. A worker that exits on its own is started
        again after a pause: 1 s, doubling up to 30 s, back to 1 s once it has run for a minute."""
        base = [
            sys.executable,
            "manage.py",
            "run_worker",
            "--queues",
            options["queues"],
            "--concurrency",
            str(options["concurrency"]),
            "--loglevel",
            options["loglevel"],
        ]
        children = [SupervisedWorker([*base, "--role", role], role) for role in ROLES]
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        for child in children:
            child.start()
        while not stopping:
            for child in children:
                child.watch(time.monotonic())
            time.sleep(0.2)
        running = [child.popen for child in children if child.popen and child.popen.poll() is None]
        for popen in running:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        return 0


class SupervisedWorker:
    """One Celery worker process of `run_worker`, started again whenever it exits."""

    def __init__(self, command: list[str], role: str) -> None:
        self.command = command
        self.role = role
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.delay = RESTART_FIRST_DELAY
        self.restart_at: float | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(self.command)
        self.started_at = time.monotonic()
        self.restart_at = None

    def watch(self, now: float) -> None:
        if self.restart_at is not None:
            if now >= self.restart_at:
                logger.warning("restarting the %s worker", self.role)
                self.start()
            return
        assert self.popen is not None
        code = self.popen.poll()
        if code is None:
            if now - self.started_at >= HEALTHY_AFTER:
                self.delay = RESTART_FIRST_DELAY
            return
        logger.error(
            "the %s worker (pid %s) exited with %s; restarting it in %.0f s",
            self.role,
            self.popen.pid,
            code,
            self.delay,
        )
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_MAX_DELAY)
