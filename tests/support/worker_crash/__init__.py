"""Test-only: a worker whose registration step kills its own pool process.

Workers started with DJANGO_SETTINGS_MODULE=tests.support.worker_crash.settings install this app;
its `ready()` wraps the registration's `create_client` step so that a client whose first name is
KILLS_ITS_WORKER takes the worker process running it down with SIGKILL, as a segfaulting library
or the kernel's OOM killer would. Nothing in the product imports this package.
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from typing import Any

from django.apps import AppConfig

KILLS_ITS_WORKER = "KillsItsWorker"
SETTINGS_MODULE = "tests.support.worker_crash.settings"


def _killing(run: Any) -> Any:
    def run_or_die(context: Any) -> Any:
        if context.input.get("first_name") == KILLS_ITS_WORKER:
            os.kill(os.getpid(), signal.SIGKILL)
        return run(context)

    return run_or_die


class WorkerCrashConfig(AppConfig):
    name = "tests.support.worker_crash"
    label = "test_worker_crash"

    def ready(self) -> None:
        from integration.models import ProcessKind
        from integration.orchestrator import definitions

        registration = definitions.DEFINITIONS[ProcessKind.CLIENT_REGISTRATION]
        steps = tuple(
            replace(step, run=_killing(step.run)) if step.name == "create_client" else step
            for step in registration.steps
        )
        definitions.DEFINITIONS[ProcessKind.CLIENT_REGISTRATION] = replace(
            registration, steps=steps
        )
