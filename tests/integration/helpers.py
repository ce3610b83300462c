"""Helpers shared by the integration unit tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from integration import bus, gateway
from integration.models import Delivery, Process, TraceEntry
from tests.support.flows import trace_of

__all__ = ["ADA", "deliver_all", "details_of", "overdue", "register", "trace_of"]

ADA: dict[str, Any] = {
    "email": "Ada@Example.COM",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "+44 20 7946 0000",
    "company": "Analytical Engines",
    "marketing_consent": False,
}


def register(**overrides: Any) -> Process:
    """A registration started by the system, in the current mode."""
    return gateway.client_register(**{**ADA, **overrides}, initiator=gateway.SYSTEM)


def details_of(process_id: UUID) -> list[Any]:
    return list(
        TraceEntry.objects.filter(process_id=process_id)
        .order_by("seq")
        .values_list("detail", flat=True)
    )


def overdue(rows: QuerySet[Any], seconds: float = 1.0) -> None:
    """Make the rows' next attempt due (as if time had passed)."""
    rows.update(next_attempt_at=timezone.now() - timedelta(seconds=seconds))


def deliver_all(limit: int = 50) -> list[tuple[str, str]]:
    """Run every runnable delivery in the order they were created, as workers would, until none
    is left; (listener, outcome) of each."""
    outcomes: list[tuple[str, str]] = []
    for _ in range(limit):
        delivery = (
            Delivery.objects.filter(status__in=bus.RUNNABLE)
            .order_by("created_at", "listener")
            .first()
        )
        if delivery is None:
            return outcomes
        outcomes.append((delivery.listener, bus.deliver(delivery_id=delivery.id)))
    raise AssertionError(f"still delivering after {limit} deliveries: {outcomes}")
