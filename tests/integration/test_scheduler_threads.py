"""The scheduler's loop with real threads: a job that hangs holds only itself."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from integration.scheduler import runner
from tests.support.waiting import wait_until


class Running:
    """The scheduler's loop in a thread of its own, stopped when the test ends."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=runner.loop, args=(self.stopping.is_set,))

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=runner.STOP_GRACE_SECONDS + 5)


@dataclass
class Jobs:
    """Two jobs: one whose first run hangs until released (a step stuck on a row lock until its
    lock timeout), and one that counts its runs."""

    release: threading.Event = field(default_factory=threading.Event)
    runs: dict[str, int] = field(default_factory=lambda: {"hangs": 0, "counts": 0})

    def hangs(self) -> None:
        self.runs["hangs"] += 1
        if self.runs["hangs"] == 1:
            self.release.wait(timeout=30)

    def counts(self) -> None:
        self.runs["counts"] += 1


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Jobs]:
    jobs = Jobs()
    monkeypatch.setattr(
        runner,
        "JOBS",
        [
            runner.Job("hangs", every=0.01, run=jobs.hangs),
            runner.Job("counts", every=0.01, run=jobs.counts),
        ],
    )
    try:
        yield jobs
    finally:
        jobs.release.set()


def test_a_job_that_hangs_holds_only_itself_and_runs_again_once_it_ends(
    jobs: Jobs, caplog: pytest.LogCaptureFixture
) -> None:
    with Running():
        # when one job hangs, the other keeps running at its rhythm
        wait_until(lambda: jobs.runs["counts"] >= 5, timeout=5)

        # and the hung one was started once, and reported once as still running
        assert jobs.runs["hangs"] == 1
        assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
            "scheduler job hangs is still running; the others go on"
        ]

        # when its run ends, it runs again at its next time
        jobs.release.set()
        wait_until(lambda: jobs.runs["hangs"] >= 3, timeout=5)


def test_a_failing_job_is_logged_and_runs_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: list[int] = []

    def fails() -> None:
        attempts.append(1)
        raise RuntimeError("the database is away")

    monkeypatch.setattr(runner, "JOBS", [runner.Job("fails", every=0.01, run=fails)])

    with Running():
        wait_until(lambda: len(attempts) >= 3, timeout=5)

    failures = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
    assert failures == {"scheduler job fails failed; it runs again next time"}
