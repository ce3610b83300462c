"""The orchestrated processes, step by step.

A step is a command on its component's queue, carried out there by one call to the component's
own service (integration/orchestrator/commands.py). What a step returns is kept on the step and
handed to the steps after it; it may hold personal data, which erasure wipes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from integration.models import ProcessKind


@dataclass(frozen=True)
class StepContext:
    process_id: UUID
    client_id: UUID
    input: dict[str, Any]
    results: dict[str, dict[str, Any]]


def always(context: StepContext) -> bool:
    return True


@dataclass(frozen=True)
class StepDefinition:
    name: str
    component: str
    run: Callable[[StepContext], dict[str, Any]]
    applies: Callable[[StepContext], bool] = field(default=always)


@dataclass(frozen=True)
class ProcessDefinition:
    kind: str
    steps: tuple[StepDefinition, ...]

    def step(self, name: str) -> StepDefinition:
        return next(step for step in self.steps if step.name == name)

    def next_step(self, after: int, context: StepContext) -> tuple[int, StepDefinition] | None:
        """The first step after position `after` (0 = start) that applies to this process."""
        for position, step in enumerate(self.steps[after:], start=after + 1):
            if step.applies(context):
                return position, step
        return None


def _definitions() -> dict[str, ProcessDefinition]:
    from integration.orchestrator import commands as c

    def consented(context: StepContext) -> bool:
        return bool(context.input.get("marketing_consent"))

    def audience_touched(context: StepContext) -> bool:
        return bool({"marketing_consent", "email"} & set(context.input))

    return {
        ProcessKind.CLIENT_REGISTRATION: ProcessDefinition(
            ProcessKind.CLIENT_REGISTRATION,
            (
                StepDefinition("create_client", "crm", c.create_client),
                StepDefinition("open_account", "sales", c.open_account),
                StepDefinition("send_welcome_email", "correspondence", c.send_welcome_email),
                StepDefinition("record_welcome_email", "crm", c.record_welcome_email),
                StepDefinition("add_to_audience", "marketing", c.add_to_audience, consented),
            ),
        ),
        ProcessKind.PURCHASE: ProcessDefinition(
            ProcessKind.PURCHASE,
            (
                StepDefinition("record_purchase", "sales", c.record_purchase),
                StepDefinition("add_client_value", "crm", c.add_client_value),
                StepDefinition("send_receipt", "correspondence", c.send_receipt),
                StepDefinition("record_receipt", "crm", c.record_receipt),
            ),
        ),
        ProcessKind.CLIENT_UPDATE: ProcessDefinition(
            ProcessKind.CLIENT_UPDATE,
            (
                StepDefinition("update_client", "crm", c.update_client),
                StepDefinition("sync_audience", "marketing", c.sync_audience, audience_touched),
            ),
        ),
        ProcessKind.CLIENT_ERASURE: ProcessDefinition(
            ProcessKind.CLIENT_ERASURE,
            (
                StepDefinition("erase_crm", "crm", c.erase_crm),
                StepDefinition("erase_sales", "sales", c.erase_sales),
                StepDefinition("erase_marketing", "marketing", c.erase_marketing),
                StepDefinition("erase_correspondence", "correspondence", c.erase_correspondence),
                StepDefinition("erase_traces", "integration", c.erase_traces),
            ),
        ),
    }


_cache: dict[str, ProcessDefinition] = {}


def definition_for(kind: str) -> ProcessDefinition:
    if not _cache:
        _cache.update(_definitions())
    return _cache[kind]


def all_definitions() -> list[ProcessDefinition]:
    definition_for(ProcessKind.CLIENT_REGISTRATION)
    return list(_cache.values())
