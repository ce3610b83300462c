"""A details lookup whose result backend fails or times out mid-way: what has answered is kept,
whoever has not is unavailable, and nothing raises (the API answers 200 or 503, never 500)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis

from integration.orchestrator import lookups

ANSWER = {"found": True, "purchases": []}


class Answered:
    id = "answered"

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return True

    result = ANSWER

    def forget(self) -> None:
        pass


class Unreadable(Answered):
    id = "unreadable"

    def ready(self) -> bool:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")


class Waiting(Answered):
    id = "waiting"

    def ready(self) -> bool:
        return False


@pytest.fixture
def replies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What each component's lookup gives back, by queue."""
    by_queue: dict[str, Any] = {}

    def send_task(name: str, *, args: list[str], **options: Any) -> Any:
        return by_queue[args[0]]

    monkeypatch.setattr(lookups.app, "send_task", send_task)
    return by_queue


def test_a_backend_that_times_out_makes_the_unanswered_component_unavailable(
    replies: dict[str, Any],
) -> None:
    replies.update(crm=Answered(), sales=Unreadable())

    assert lookups.ask(["crm", "sales"], uuid.uuid4()) == ({"crm": ANSWER}, ["sales"])


def test_a_backend_that_fails_while_waiting_makes_everyone_waiting_unavailable(
    replies: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    replies.update(crm=Waiting(), sales=Waiting())

    def broken(seconds: float) -> None:
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(lookups, "_wait_for_results", broken)

    assert lookups.ask(["crm", "sales"], uuid.uuid4()) == ({}, ["crm", "sales"])
