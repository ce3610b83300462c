"""Unit tests of the integration core: everything runs in this process, nothing reaches a broker.

The broker is replaced by a recorder (the relay's real code runs up to `app.send_task`), so a test
can say exactly which messages would have been published, and to which queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from common import correlation
from integration import actions
from integration.core import relay


@dataclass(frozen=True)
class Sent:
    """One message as the broker would have received it."""

    task: str
    args: list[str]
    queue: str
    correlation_id: str | None


@dataclass
class Broker:
    sent: list[Sent] = field(default_factory=list)
    refusing: BaseException | None = None
    calls: int = 0
    waiting: dict[str, int] = field(default_factory=dict)  # messages queued, by queue

    def queued_messages(self, queue: str) -> int:
        return self.waiting.get(queue, 0)

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        self.calls += 1
        if self.refusing is not None:
            raise self.refusing
        headers = options.get("headers") or {}
        self.sent.append(Sent(name, list(args or []), options["queue"], headers["correlation_id"]))


@pytest.fixture(autouse=True)
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    """What the relay publishes, recorded instead of sent; the breaker starts closed."""
    recorder = Broker()
    monkeypatch.setattr(relay.app, "send_task", recorder.send_task)
    monkeypatch.setattr(relay, "queued_messages", recorder.queued_messages)
    monkeypatch.setattr(relay, "_broker_down_until", 0.0)
    return recorder


@pytest.fixture(autouse=True)
def integration_settings(settings: Any) -> None:
    """The same timings whatever the environment says: T = 30 s, three attempts."""
    settings.ORCHESTRATOR_STEP_TIMEOUT = 30.0
    settings.ORCHESTRATOR_MAX_ATTEMPTS = 3
    settings.STUCK_AFTER = 300.0
    settings.INTEGRATION_MODE = None


@pytest.fixture(autouse=True)
def no_correlation() -> Iterator[None]:
    yield
    correlation.set(None)


@pytest.fixture
def choreography(db: None) -> None:
    actions.mode_switch(mode="choreography", changed_by="test")
