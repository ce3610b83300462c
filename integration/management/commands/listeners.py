"""`manage.py listeners [pause|resume|disable|enable NAME]`: choreography's listener switches.

Without arguments: one line per listener, `<component>.<name> <state> <backlog>`. NAME is one
listener or a whole component.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from common.errors import ApplicationError
from integration import actions
from integration.choreography import switches


class Command(BaseCommand):
    help = "List choreography listeners, or pause/resume/disable/enable one or a component."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", nargs="?", choices=sorted(switches.ACTIONS))
        parser.add_argument("name", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        action, name = options["action"], options["name"]
        if action is None:
            for listener, state, backlog in switches.listener_states():
                self.stdout.write(f"{listener} {state} {backlog}")
            return
        if not name:
            raise CommandError(f"say which listener or component to {action}")
        try:
            switched = actions.listener_set(
                name=name, state=switches.ACTIONS[action], by="manage.py"
            )
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        for listener in switched:
            self.stdout.write(f"{listener} {switches.ACTIONS[action]}")
