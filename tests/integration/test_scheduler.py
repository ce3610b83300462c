"""The scheduler: runs what is due, survives a failing job, says when the next one is due."""

from __future__ import annotations

import logging

import pytest

from integration.scheduler import runner


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three jobs of our own instead of the real ones; what ran, in order."""
    calls: list[str] = []

    def fails() -> object:
        calls.append("fails")
        raise RuntimeError("the database is away")

    monkeypatch.setattr(
        runner,
        "JOBS",
        [
            runner.Job("often", every=1.0, run=lambda: calls.append("often")),
            runner.Job("fails", every=2.0, run=fails),
            runner.Job("later", every=5.0, run=lambda: calls.append("later"), next_at=100.0),
        ],
    )
    monkeypatch.setattr(runner, "close_connections", lambda: calls.append("close"))
    monkeypatch.setattr(runner, "launch", runner.run_once)  # inline: the order is exact
    return calls


def test_due_jobs_run_a_failing_one_does_not_stop_the_others(
    ran: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    # when the scheduler runs at t=10
    with caplog.at_level(logging.ERROR, logger="integration.scheduler.runner"):
        next_at = runner.run_due(10.0)

    # then the two due jobs ran (connections closed after each), the failure was logged,
    # and the next one is due in a second
    assert ran == ["often", "close", "fails", "close"]
    assert [r.getMessage() for r in caplog.records] == [
        "scheduler job fails failed; it runs again next time"
    ]
    assert [(job.name, job.next_at) for job in runner.JOBS] == [
        ("often", 11.0),
        ("fails", 12.0),
        ("later", 100.0),
    ]
    assert next_at == 11.0


def test_nothing_runs_before_it_is_due_and_each_runs_again_at_its_interval(
    ran: list[str],
) -> None:
    runner.run_due(10.0)
    ran.clear()

    assert runner.run_due(10.5) == 11.0
    assert ran == []
    assert runner.run_due(11.0) == 12.0
    assert ran == ["often", "close"]
    ran.clear()
    assert runner.run_due(12.0) == 13.0
    assert ran == ["often", "close", "fails", "close"]
    ran.clear()
    assert runner.run_due(100.0) == 101.0
    assert ran == ["often", "close", "fails", "close", "later", "close"]


def test_without_jobs_the_next_run_is_a_second_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "JOBS", [])

    assert runner.run_due(7.0) == 8.0


def test_the_loop_runs_until_told_to_stop(monkeypatch: pytest.MonkeyPatch, ran: list[str]) -> None:
    checks = iter([False, False, True])

    def run_due(now: float) -> float:
        ran.append("run")
        return now - 1  # already due again: the loop only sleeps while it is not

    monkeypatch.setattr(runner, "run_due", run_due)

    runner.loop(lambda: next(checks, True))

    assert ran == ["run"]


def test_the_integration_jobs_are_registered() -> None:
    assert [(job.name, job.every) for job in runner.JOBS] == [
        ("orchestrator.sweep_steps", 0.5),
        ("bus.sweep_deliveries", 0.5),
        ("monitor.stuck_processes", 5),
        ("tally.fold", 2),
        ("reconcile.replicas", 3600),
        ("webhooks.sweep", 1),
        ("idempotency.prune", 600),
    ]
