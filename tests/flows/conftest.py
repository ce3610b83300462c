"""Flow tests run the real worker processes on this run's database and broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import flows, processes


@pytest.fixture(scope="module")
def all_workers(child_env: dict[str, str]) -> Iterator[processes.Process]:
    """One worker for every component queue (the `make run` shape)."""
    worker = flows.start_workers(flows.ALL, child_env)
    yield worker
    worker.stop()


@pytest.fixture
def fast_retries(settings: Any, child_env: dict[str, str]) -> dict[str, str]:
    """Short step timeouts and few attempts, in this process and in the children it starts."""
    settings.ORCHESTRATOR_STEP_TIMEOUT = 0.5
    settings.ORCHESTRATOR_MAX_ATTEMPTS = 3
    settings.LOOKUP_TIMEOUT = 0.5
    return {
        **child_env,
        "ORCHESTRATOR_STEP_TIMEOUT": "0.5",
        "ORCHESTRATOR_MAX_ATTEMPTS": "3",
        "LOOKUP_TIMEOUT": "0.5",
    }


@pytest.fixture
def scheduler(fast_retries: dict[str, str]) -> Iterator[processes.Process]:
    process = processes.start_scheduler(fast_retries)
    yield process
    process.stop()
