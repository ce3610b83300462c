"""`make worker QUEUES=crm,sales`: the Celery workers of those components.

Each component is two broker queues: its commands and events (`crm`) and its lookups
(`crm.lookup`). They get two worker processes: a pool for commands and events, and a small thread
pool of its own for lookups, so that however long the backlog of commands, a details lookup is
answered at once (a busy component does not look down).
"""

from __future__ import annotations

import contextlib
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
        """Run both workers; a signal stops both, and so does either one ending."""
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
        children = [subprocess.Popen([*base, "--role", role]) for role in ("commands", "lookups")]
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 0 if stopping else 1
