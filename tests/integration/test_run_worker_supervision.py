"""`run_worker` starts a worker process that exits again: after 1 s, doubling up to 30 s, and
after 1 s again once the worker has run for a minute."""

from __future__ import annotations

import pytest

from integration.management.commands import run_worker


class FakePopen:
    started: list[FakePopen] = []

    def __init__(self, command: list[str]) -> None:
        self.pid = 1000 + len(FakePopen.started)
        self.returncode: int | None = None
        FakePopen.started.append(self)

    def poll(self) -> int | None:
        return self.returncode


@pytest.fixture
def popen(monkeypatch: pytest.MonkeyPatch) -> list[FakePopen]:
    FakePopen.started = []
    monkeypatch.setattr(run_worker.subprocess, "Popen", FakePopen)
    return FakePopen.started


def dies_at(worker: run_worker.SupervisedWorker, now: float) -> float:
    """The worker's process exits at `now`; when it is started again."""
    assert worker.popen is not None
    worker.popen.returncode = -9
    worker.watch(now)
    assert worker.restart_at is not None
    return worker.restart_at - now


def test_a_worker_that_keeps_dying_is_restarted_with_growing_pauses(
    popen: list[FakePopen], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter(range(0, 10_000)).__next__
    monkeypatch.setattr(run_worker.time, "monotonic", lambda: float(clock()))
    worker = run_worker.SupervisedWorker(["worker"], "commands")
    worker.start()

    pauses = []
    for _ in range(7):
        now = worker.started_at + 1
        pauses.append(dies_at(worker, now))
        worker.watch(now + pauses[-1] - 0.5)  # not yet
        assert len(popen) == len(pauses)
        worker.watch(now + pauses[-1])  # started again
        assert len(popen) == len(pauses) + 1

    assert pauses == [1, 2, 4, 8, 16, 30, 30]


def test_a_minute_of_health_makes_the_next_restart_quick(
    popen: list[FakePopen], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whole-numbered clock: with a real one, (started + 60) - started may come out a hair
    # under 60 in floating point, and the minute would not have passed.
    monkeypatch.setattr(run_worker.time, "monotonic", lambda: 2009.0)
    worker = run_worker.SupervisedWorker(["worker"], "commands")
    worker.start()
    worker.delay = 16.0
    worker.watch(worker.started_at + run_worker.HEALTHY_AFTER)

    assert dies_at(worker, worker.started_at + 61) == 1.0


def test_a_running_worker_is_left_alone(popen: list[FakePopen]) -> None:
    worker = run_worker.SupervisedWorker(["worker"], "lookups")
    worker.start()
    worker.watch(worker.started_at + 5)

    assert (len(popen), worker.restart_at) == (1, None)
