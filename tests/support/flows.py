"""Helpers for flow tests: wait for a process, read its trace as tuples, run real workers."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import close_old_connections

from integration.models import Process, Step, TraceEntry
from integration.tasks import ping
from tests.support import processes

ALL = "crm,sales,marketing,correspondence,integration"
FINAL = {"completed", "failed", "closed"}


def wait_for_workers(queues: Iterable[str], timeout: float = 60) -> None:
    """Every queue answers a ping: its worker is consuming."""
    results = [ping.apply_async(args=(queue,), queue=queue) for queue in queues]
    for result in results:
        result.get(timeout=timeout)
        result.forget()


def start_workers(components: str, env: dict[str, str]) -> processes.Process:
    worker = processes.start_worker(components, env)
    try:
        wait_for_workers(components.split(","))
    except BaseException:
        worker.stop()
        raise
    return worker


def wait_for_status(
    process_id: UUID, statuses: Iterable[str] = ("completed",), timeout: float = 60
) -> Process:
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    process = None
    while time.monotonic() < deadline:
        close_old_connections()
        process = Process.objects.get(pk=process_id)
        if process.status in wanted:
            return process
        if process.status in FINAL - wanted:
            break
        time.sleep(0.05)
    errors = Step.objects.filter(process_id=process_id).exclude(last_error="")
    raise AssertionError(
        f"process {process_id} is {process.status if process else '?'}, not {wanted}:\n"
        + "\n".join(map(str, trace_of(process_id)))
        + "".join(f"\n{step.name}: {step.last_error}" for step in errors)
    )


def wait_for_trace(process_id: UUID, predicate: Any, timeout: float = 60) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trace = trace_of(process_id)
        if any(predicate(entry) for entry in trace):
            return trace
        time.sleep(0.05)
    raise AssertionError("no such trace entry in:\n" + "\n".join(map(str, trace_of(process_id))))


def trace_of(process_id: UUID) -> list[tuple[Any, ...]]:
    """(component, name, kind, status, attempt) of each entry, in seq order."""
    return list(
        TraceEntry.objects.filter(process_id=process_id)
        .order_by("seq")
        .values_list("component", "name", "kind", "status", "attempt")
    )
