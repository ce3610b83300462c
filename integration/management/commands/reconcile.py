"""`manage.py reconcile [--repair]`: every replica compared with its owner by client version.

One line per difference, `<component>.<replica> <client_id> owner=<version>
replica=<version|missing|extra>`, then `<N> differences`. With --repair, each difference is sent
the owner's current state through the bus, and the last line is `repaired <N>`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integration import actions
from integration.choreography import reconcile

ACTOR = "manage.py"


class Command(BaseCommand):
    help = "Compare every replica with its owner; --repair sends the owner's state to what lags."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--repair", action="store_true", help="send each difference the owner's state"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["repair"]:
            found = actions.replicas_repair(by=ACTOR)
        else:
            found = reconcile.replicas_check(by=ACTOR)
        for line in found.lines():
            self.stdout.write(line)
        self.stdout.write(f"{len(found.differences)} differences")
        if options["repair"]:
            self.stdout.write(f"repaired {found.repaired}")
