"""The orchestrated processes, step by step.

A step is a command on its component's queue, carried out there by one call to the component's
own service (integration/orchestrator/steps.py). What a step returns is kept on the step and
handed to the steps after it; it may hold personal data, which erasure wipes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from integration.models import ProcessKind
from integration.orchestrator import steps as c
from integration.orchestrator.context import StepContext


def always(context: StepContext) -> bool:
    return True


Settle = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class AfterCommit:
    """A step's work outside the database, such as sending an email (nothing outside the database
    happens in a transaction that holds a lock). The step's function records the intent in the
    step's transaction and returns it; after commit, in the same worker, the engine calls
    `run(intent, settle)` outside every transaction. `run` calls `settle(status, result)` inside
    the short transaction that records its outcome: there the engine traces it as `name`, marks
    the step done with `result` and sends the next command. What `run` raises is retried like any
    failed step; when it returns without settling (another worker holds the work), the step's
    command waits for its answer as usual."""

    name: str
    run: Callable[[dict[str, Any], Settle], None]


SEND_EMAIL = AfterCommit("send_email", c.deliver_email)


@dataclass(frozen=True)
class StepDefinition:
    name: str
    component: str
    run: Callable[[StepContext], dict[str, Any]]
    applies: Callable[[StepContext], bool] = field(default=always)
    after_commit: AfterCommit | None = None
    # The step changes the client's profile in crm: its result's "version" becomes the
    # process's client_version (what the shop may read its own write at).
    versions_client: bool = False
    # What the step's function (and `applies`) read besides the client id: a name is a field of
    # the process's input, `step.key` a key of an earlier step's result. The integration map
    # answers "what does a change to this field touch" from these.
    reads: tuple[str, ...] = ()


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


def consented(context: StepContext) -> bool:
    return bool(context.input.get("marketing_consent"))


def audience_touched(context: StepContext) -> bool:
    return bool({"marketing_consent", "email"} & set(context.input))


def welcome_sent(context: StepContext) -> bool:
    """An email cancelled by the client's erasure has nothing to record."""
    return bool(context.results.get("send_welcome_email", {}).get("status") == "sent")


def receipt_sent(context: StepContext) -> bool:
    return bool(context.results.get("send_receipt", {}).get("status") == "sent")


PROFILE_READS = c.PROFILE_FIELDS  # what the registration and update hand crm
ORDER_READS = ("order_ref", "total", "currency", "purchased_at")
EMAIL_SENT_READS = ("subject", "sent_at", "message_id", "status")


def _sent(step: str) -> tuple[str, ...]:
    return tuple(f"{step}.{key}" for key in EMAIL_SENT_READS)


DEFINITIONS: dict[str, ProcessDefinition] = {
    ProcessKind.CLIENT_REGISTRATION: ProcessDefinition(
        ProcessKind.CLIENT_REGISTRATION,
        (
            StepDefinition(
                "create_client", "crm", c.create_client, versions_client=True, reads=PROFILE_READS
            ),
            StepDefinition("open_account", "sales", c.open_account),
            StepDefinition(
                "send_welcome_email",
                "correspondence",
                c.send_welcome_email,
                after_commit=SEND_EMAIL,
                reads=("email", "first_name"),
            ),
            StepDefinition(
                "record_welcome_email",
                "crm",
                c.record_welcome_email,
                welcome_sent,
                reads=_sent("send_welcome_email"),
            ),
            StepDefinition(
                "add_to_audience",
                "marketing",
                c.add_to_audience,
                consented,
                reads=("email", "marketing_consent", "create_client.version"),
            ),
        ),
    ),
    ProcessKind.PURCHASE: ProcessDefinition(
        ProcessKind.PURCHASE,
        (
            StepDefinition("record_purchase", "sales", c.record_purchase, reads=ORDER_READS),
            StepDefinition(
                "add_client_value", "crm", c.add_client_value, reads=("total", "currency")
            ),
            StepDefinition(
                "send_receipt",
                "correspondence",
                c.send_receipt,
                after_commit=SEND_EMAIL,
                reads=(
                    "order_ref",
                    "total",
                    "currency",
                    "add_client_value.email",
                    "add_client_value.first_name",
                ),
            ),
            StepDefinition(
                "record_receipt",
                "crm",
                c.record_receipt,
                receipt_sent,
                reads=_sent("send_receipt"),
            ),
        ),
    ),
    ProcessKind.CLIENT_UPDATE: ProcessDefinition(
        ProcessKind.CLIENT_UPDATE,
        (
            StepDefinition(
                "update_client", "crm", c.update_client, versions_client=True, reads=PROFILE_READS
            ),
            StepDefinition(
                "sync_audience",
                "marketing",
                c.sync_audience,
                audience_touched,
                reads=(
                    "email",
                    "marketing_consent",
                    "update_client.email",
                    "update_client.marketing_consent",
                    "update_client.version",
                ),
            ),
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


def definition_for(kind: str) -> ProcessDefinition:
    return DEFINITIONS[kind]


def all_definitions() -> list[ProcessDefinition]:
    return list(DEFINITIONS.values())
