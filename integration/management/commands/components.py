"""`manage.py components [pause|resume NAME]`: planned maintenance of a component, either mode.

Without arguments: one line per component, `<component> <state> <held>`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from common.components import COMPONENTS
from common.errors import ApplicationError
from integration import actions
from integration.core import components
from integration.models import ComponentState

ACTIONS = {"pause": ComponentState.PAUSED, "resume": ComponentState.RUNNING}


class Command(BaseCommand):
    help = "List the components, or pause/resume one for maintenance."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("action", nargs="?", choices=sorted(ACTIONS))
        parser.add_argument("name", nargs="?", choices=COMPONENTS)

    def handle(self, *args: Any, **options: Any) -> None:
        action, name = options["action"], options["name"]
        if action is None:
            held = components.held_counts()
            for component, state in components.component_states().items():
                self.stdout.write(f"{component} {state} {held[component]}")
            return
        if not name:
            raise CommandError(f"say which component to {action}")
        try:
            released = actions.component_set(name=name, state=ACTIONS[action], by="manage.py")
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        suffix = f" (sent {released} held)" if action == "resume" else ""
        self.stdout.write(f"{name} {ACTIONS[action]}{suffix}")
