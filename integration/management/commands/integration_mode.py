"""`manage.py integration_mode [orchestration|choreography]`: print or switch the runtime mode."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from common.errors import ApplicationError
from integration import actions
from integration.core import modes


class Command(BaseCommand):
    help = "Print the integration mode, or switch it for processes that start from now on."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("mode", nargs="?", choices=["orchestration", "choreography"])
        parser.add_argument(
            "--from-environment",
            action="store_true",
            help="store INTEGRATION_MODE when it is set (what the web server does as it starts)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["mode"]:
                mode = actions.mode_switch(mode=options["mode"], changed_by="manage.py")
            elif options["from_environment"]:
                mode = actions.mode_apply_environment()
            else:
                mode = modes.mode_get()
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(mode)
