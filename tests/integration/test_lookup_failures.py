"""A details lookup answered as Celery results whose result backend fails or times out mid-way:
what has answered is kept, whoever has not is unavailable, and nothing raises (the API answers 200
or 503, never 500)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
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
    monkeypatch.setattr(lookups, "_pushes_answers", lambda: False)  # the store is asked
    monkeypatch.setattr(lookups, "answers_client", lambda: None)  # answers as Celery results
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


class Pushed(Answered):
    """An answer a pushing backend delivers on the third wait: until then the store says no."""

    id = "pushed"

    def __init__(self) -> None:
        self.asked = 0
        self.on_ready = SimpleNamespace(ready=False)

    def ready(self) -> bool:
        self.asked += 1
        return self.on_ready.ready


def test_a_pushing_backend_is_asked_for_answers_only_now_and_then(
    replies: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    crm, sales = Pushed(), Pushed()
    replies.update(crm=crm, sales=sales)
    waits = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            crm.on_ready.ready = sales.on_ready.ready = True

    monkeypatch.setattr(lookups, "_wait_for_results", wait)
    monkeypatch.setattr(lookups, "_pushes_answers", lambda: True)
    monkeypatch.setattr(
        lookups.app.backend, "add_pending_result", lambda *a, **k: None, raising=False
    )

    assert lookups.ask(["crm", "sales"], uuid.uuid4()) == ({"crm": ANSWER, "sales": ANSWER}, [])
    # the store asked on the first poll, then each result once its push had come
    assert (len(waits), crm.asked, sales.asked) == (3, 2, 2)
