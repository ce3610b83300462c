"""`make worker QUEUES=crm,sales`: a Celery worker for those components.

Each component is two broker queues: its commands and events (`crm`) and its lookups
(`crm.lookup`), so that a backlog of commands never starves a details lookup.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.celery import COMPONENTS, app, queues_for


def parse_components(raw: str) -> list[str]:
    components = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown or not components:
        raise CommandError(
            f"unknown queue {', '.join(unknown) or '(none)'}; choose from {', '.join(COMPONENTS)}"
        )
    return components


class Command(BaseCommand):
    help = "Run a Celery worker consuming the queues of the given components."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--queues", default=",".join(COMPONENTS))
        parser.add_argument(
            "--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2"))
        )
        parser.add_argument("--loglevel", default=os.environ.get("LOG_LEVEL", "INFO"))

    def handle(self, *args: Any, **options: Any) -> None:
        components = parse_components(options["queues"])
        name = f"{'+'.join(components)}.{os.getpid()}@{socket.gethostname()}"
        app.worker_main(
            [
                "worker",
                f"--queues={','.join(queues_for(components))}",
                f"--concurrency={options['concurrency']}",
                f"--loglevel={options['loglevel']}",
                f"--hostname={name}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
