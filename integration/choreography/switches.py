"""Listener switches (choreography): enabled, paused (backlog held, delivered in order on resume)
or disabled (gets nothing; processes complete without it). Per listener or per component."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count

from common.errors import NotFound, ValidationFailed
from integration import bus
from integration.models import Delivery, ListenerState, ListenerSwitch

ACTIONS = {
    "pause": ListenerState.PAUSED,
    "resume": ListenerState.ENABLED,
    "enable": ListenerState.ENABLED,
    "disable": ListenerState.DISABLED,
}


def listener_states() -> list[tuple[str, str, int]]:
    """(listener, state, backlog) for every listener; the backlog is what it has not settled."""
    states = dict(ListenerSwitch.objects.values_list("listener", "state"))
    backlog = dict(
        Delivery.objects.filter(status__in=bus.OPEN)
        .values_list("listener")
        .annotate(count=Count("id"))
        .values_list("listener", "count")
    )
    return [
        (entry.name, states.get(entry.name, ListenerState.ENABLED), backlog.get(entry.name, 0))
        for entry in sorted(bus.registry(), key=lambda entry: entry.name)
    ]


def listener_set(*, name: str, state: str, by: str) -> list[str]:
    """Switch one listener or a whole component; returns the listeners switched."""
    if state not in ListenerState.values:
        raise ValidationFailed(f"unknown state {state!r}", errors={"state": [f"{state!r}?"]})
    names = bus.listener_names(name)
    if not names:
        raise NotFound(f"no listener or component named {name!r}")
    with transaction.atomic():
        for listener in names:
            _switch(listener, state, by)
    return names


def _switch(listener: str, state: str, by: str) -> None:
    switch = ListenerSwitch.objects.select_for_update().filter(listener=listener).first()
    before = switch.state if switch else ListenerState.ENABLED
    ListenerSwitch.objects.update_or_create(
        listener=listener, defaults={"state": state, "changed_by": by}
    )
    if before == ListenerState.PAUSED and state == ListenerState.ENABLED:
        bus.release_held(listener=listener)
    elif before == ListenerState.PAUSED and state == ListenerState.DISABLED:
        bus.skip_held(listener=listener)
