"""Celery tasks of the integration layer. They take ids and call one function each."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from celery import shared_task

from integration import bus
from integration.orchestrator import engine, lookups


@shared_task(name="integration.ping")
def ping(payload: str = "ping") -> str:
    """A round trip through the broker and a worker, for readiness checks and smoke tests."""
    return f"pong:{payload}"


@shared_task(name=engine.RUN_STEP_TASK, ignore_result=True)
def run_step(step_id: str) -> str:
    """Carry out one copy of an orchestrated step's command (on the step's component queue)."""
    return engine.step_execute(step_id=UUID(step_id))


@shared_task(name=lookups.LOOKUP_TASK, bind=True)
def lookup(self: Any, component: str, client_id: str) -> dict[str, Any]:
    """Answer a details lookup from the component's own data (on its lookup queue)."""
    return lookups.answer_in_time(component, UUID(client_id), expires=self.request.expires)


@shared_task(name=lookups.LOOKUP_REPLY_TASK, bind=True, ignore_result=True)
def lookup_reply(self: Any, component: str, client_id: str, reply_to: str) -> bool:
    """Answer a details lookup onto the asker's answer list (on the component's lookup queue)."""
    return lookups.reply_in_time(component, UUID(client_id), reply_to, expires=self.request.expires)


@shared_task(name=bus.DELIVER_TASK, ignore_result=True)
def deliver(delivery_id: str) -> str:
    """Run one copy of an event's delivery to a listener (on the listener's component queue)."""
    return bus.deliver(delivery_id=UUID(delivery_id))
