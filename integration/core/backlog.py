"""Telling a message that waits its turn from one that is lost.

A command or delivery still unanswered after its timeout is put on the broker again, because a
broker can lose messages. Under a backlog, though, the first copy is not lost but queued: sending
it again would add one more copy behind it for every message still waiting, each timeout, and a
burst would bury its own workers in copies. So before resending, the sweepers ask once per
component and sweep: are its workers getting through the queue (they finished something within
the timeout) and does the queue still hold messages? Then the copy is on its way, and its wait
is extended without counting a send or an attempt. A component whose workers finished nothing is
down, as before: its attempts count, and its processes fail when they are spent. A copy older
than the broker's own redelivery horizon is sent again whatever the queue says.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings

from config.env import VISIBILITY_TIMEOUT
from integration.core import relay
from integration.models import Delivery, Step


def components_backlogged(components: Iterable[str], *, now: datetime) -> set[str]:
    """Of these components, those whose queue is moving and not yet empty. Asks the database
    and the broker: call it outside any transaction."""
    return {component for component in set(components) if _backlogged(component, now)}


def waits_its_turn(
    component: str, sent_at: datetime | None, backlogged: set[str], now: datetime
) -> bool:
    """Whether a copy sent at `sent_at` is still taken to be in its component's queue."""
    if component not in backlogged or sent_at is None:
        return False
    return (now - sent_at).total_seconds() < VISIBILITY_TIMEOUT


def _backlogged(component: str, now: datetime) -> bool:
    return _moving(component, now) and (relay.queued_messages(component) or 0) > 0


def _moving(component: str, now: datetime) -> bool:
    since = now - timedelta(seconds=settings.ORCHESTRATOR_STEP_TIMEOUT)
    return (
        Step.objects.filter(component=component, done_at__gte=since).exists()
        or Delivery.objects.filter(component=component, done_at__gte=since).exists()
    )
