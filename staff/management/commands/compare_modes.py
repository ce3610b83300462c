"""`manage.py compare_modes [--clients N]`: the same work in both modes, measured side by side.

Registers N clients and records a purchase for each, first orchestrated, then choreographed, on the
running system (its workers must be up), and prints what each mode cost. The runtime mode is put
back as it was. The clients it creates are real; run it on a demo or test database.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand
from django.urls import reverse

from staff.comparison import compare


class Command(BaseCommand):
    help = "Run the same registrations and purchases in both modes and compare what they cost."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, default=20)
        parser.add_argument("--timeout", type=float, default=300)

    def handle(self, *args: Any, **options: Any) -> None:
        rows = compare(clients=max(1, options["clients"]), timeout=options["timeout"])
        keys = list(rows[0])
        width = max(len(key) for key in keys)
        self.stdout.write(f"{'':{width}}  " + "  ".join(f"{row['mode']:>14}" for row in rows))
        for key in keys[1:]:
            values = "  ".join(f"{row[key]!s:>14}" for row in rows)
            self.stdout.write(f"{key:{width}}  {values}")
        # The same runs, with every other process of the last hour, as the page draws them.
        host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
        page = f"http://{host}:{port}{reverse('integration:compare')}?window=hour"
        self.stdout.write(f"Both modes side by side, from what really ran: {page}")
