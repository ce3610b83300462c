"""Component maintenance: a paused component's work waits in the database.

While a component is paused, commands to it (orchestration) and deliveries to its listeners
(choreography) are held — not put on the broker, no attempt spent, not counted as stuck — and
resuming sends them in the order they were made. The orchestrator and the bus ask here before
they send, sweep or run anything for a component.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count

from common.components import COMPONENTS
from common.errors import NotFound, ValidationFailed
from common.recent import Recent
from integration.models import (
    ComponentState,
    ComponentSwitch,
    Delivery,
    DeliveryStatus,
    Step,
    StepStatus,
)

_recent = Recent[frozenset[str]]()


def paused_components() -> frozenset[str]:
    """The components paused now (another process's switch is seen within RECENT_MAX_AGE)."""
    return _recent.get("paused", _stored_paused)


def _stored_paused() -> frozenset[str]:
    return frozenset(
        ComponentSwitch.objects.filter(state=ComponentState.PAUSED).values_list(
            "component", flat=True
        )
    )


def component_paused(component: str) -> bool:
    return component in paused_components()


def component_states() -> dict[str, str]:
    """Every component's state (running unless switched)."""
    stored = dict(ComponentSwitch.objects.values_list("component", "state"))
    return {name: stored.get(name, ComponentState.RUNNING) for name in COMPONENTS}


def component_switch(*, component: str, state: str, by: str) -> str:
    """Store a component's state; the state it had before. (People switch through
    `integration.actions.component_set`, which releases the held work on resume.)"""
    if component not in COMPONENTS:
        raise NotFound(f"no component named {component!r}")
    if state not in ComponentState.values:
        raise ValidationFailed(f"unknown state {state!r}", errors={"state": [f"{state!r}?"]})
    switch, _ = ComponentSwitch.objects.select_for_update().get_or_create(component=component)
    before = switch.state
    switch.state = state
    switch.changed_by = by
    switch.save(update_fields=["state", "changed_by", "changed_at"])
    transaction.on_commit(_recent.forget)
    _recent.forget()
    return before


def held_counts() -> dict[str, int]:
    """What each component holds: its held commands and deliveries."""
    held = {name: 0 for name in COMPONENTS}
    rows = [
        *Step.objects.filter(status=StepStatus.HELD)
        .values_list("component")
        .annotate(count=Count("id")),
        *Delivery.objects.filter(status=DeliveryStatus.HELD)
        .values_list("component")
        .annotate(count=Count("id")),
    ]
    for component, count in rows:
        held[component] = held.get(component, 0) + count
    return held
