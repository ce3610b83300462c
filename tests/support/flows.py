"""Helpers for flow tests: wait for a process, read its trace as tuples, run real workers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from integration.models import Process, Step, TraceEntry
from integration.tasks import ping
from tests.support import processes
from tests.support.waiting import wait_until

ALL = "crm,sales,marketing,correspondence,integration"
FINAL = {"completed", "failed", "closed"}


def wait_for_workers(queues: Iterable[str], timeout: float = 60) -> None:
    """Every queue answers a ping: its worker is consuming."""
    results = [ping.apply_async(args=(queue,), queue=queue) for queue in queues]
    for result in results:
        result.get(timeout=timeout)
        result.forget()


def start_workers(components: str, env: dict[str, str], concurrency: int = 2) -> processes.Process:
    worker = processes.start_worker(components, env, concurrency=concurrency)
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

    def settled() -> Process | None:
        process = Process.objects.get(pk=process_id)
        # A final status it did not want will not change: stop waiting at once.
        return process if process.status in wanted | FINAL else None

    def describe() -> str:
        process = Process.objects.filter(pk=process_id).first()
        errors = Step.objects.filter(process_id=process_id).exclude(last_error="")
        return (
            f"process {process_id} is {process.status if process else '?'}, not {wanted}:\n"
            + "\n".join(map(str, trace_of(process_id)))
            + "".join(f"\n{step.name}: {step.last_error}" for step in errors)
        )

    process = wait_until(
        settled, timeout=timeout, interval=0.05, describe=describe, close_connections=True
    )
    if process.status not in wanted:
        raise AssertionError(describe())
    return process


def wait_for_trace(process_id: UUID, predicate: Any, timeout: float = 60) -> list[tuple[Any, ...]]:
    def matching_trace() -> list[tuple[Any, ...]] | None:
        trace = trace_of(process_id)
        return trace if any(predicate(entry) for entry in trace) else None

    return wait_until(
        matching_trace,
        timeout=timeout,
        interval=0.05,
        describe=lambda: "no such trace entry in:\n" + "\n".join(map(str, trace_of(process_id))),
    )


def trace_of(process_id: UUID) -> list[tuple[Any, ...]]:
    """(component, name, kind, status, attempt) of each entry, in seq order."""
    return list(
        TraceEntry.objects.filter(process_id=process_id)
        .order_by("seq")
        .values_list("component", "name", "kind", "status", "attempt")
    )
