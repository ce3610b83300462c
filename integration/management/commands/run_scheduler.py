"""`make scheduler`: runs the periodic jobs until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from integration.scheduler import runner


class Command(BaseCommand):
    help = "Run the periodic jobs (outbox sweeper, stuck-process monitor, webhook retries)."

    def handle(self, *args: Any, **options: Any) -> None:
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        names = ", ".join(f"{job.name} every {job.every:g}s" for job in runner.JOBS)
        self.stdout.write(f"scheduler: {names or 'no jobs'}")
        runner.loop(lambda: stopping)
        self.stdout.write("scheduler: stopped")
