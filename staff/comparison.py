"""Run the same work in both modes and measure what each costs (`manage.py compare_modes`).

Registrations and purchases go through the gateway like the shop's; the figures come from the
database the processes wrote: latency from start to finish, broker messages (commands and
deliveries, resends included), events, trace entries, retries, rows of duplicated data, and how
long a details lookup takes. Needs the workers running (`make run`, or `make worker`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Sum

from integration import actions, gateway
from integration.choreography import reconcile
from integration.core import modes
from integration.models import Delivery, EventRecord, Process, Step, TraceEntry

FINAL = ("completed", "failed", "closed")


@dataclass
class ModeFigures:
    mode: str
    processes: int = 0
    completed: int = 0
    latency_ms: list[float] = field(default_factory=list)
    details_ms: list[float] = field(default_factory=list)
    messages: int = 0
    events: int = 0
    trace_entries: int = 0
    retries: int = 0
    duplicated_rows: int = 0
    wall_seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        per = max(self.processes, 1)
        return {
            "mode": self.mode,
            "processes": self.processes,
            "completed": self.completed,
            "latency p50 ms": _percentile(self.latency_ms, 50),
            "latency p95 ms": _percentile(self.latency_ms, 95),
            "details p50 ms": _percentile(self.details_ms, 50),
            "details p95 ms": _percentile(self.details_ms, 95),
            "messages/process": round(self.messages / per, 1),
            "events/process": round(self.events / per, 1),
            "trace entries/process": round(self.trace_entries / per, 1),
            "retries": self.retries,
            "duplicated rows": self.duplicated_rows,
            "processes/s": round(self.processes / self.wall_seconds, 1) if self.wall_seconds else 0,
        }


def _percentile(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100)[pct - 1], 1)


def compare(*, clients: int, timeout: float = 300) -> list[dict[str, Any]]:
    """Run `clients` registrations and one purchase each in every mode; figures per mode."""
    before = modes.mode_get()
    try:
        return [_run(mode, clients, timeout).row() for mode in ("orchestration", "choreography")]
    finally:
        actions.mode_switch(mode=before, changed_by="compare_modes")


def _run(mode: str, clients: int, timeout: float) -> ModeFigures:
    actions.mode_switch(mode=mode, changed_by="compare_modes")
    figures = ModeFigures(mode=mode)
    run = uuid.uuid4().hex[:8]
    started = time.monotonic()
    registrations = [_register(run, index) for index in range(clients)]
    _wait([p.id for p in registrations], timeout)
    purchases = [_purchase(p.client_id, run) for p in registrations]
    _wait([p.id for p in purchases], timeout)
    figures.wall_seconds = time.monotonic() - started
    process_ids = [p.id for p in registrations + purchases]
    _measure(figures, process_ids)
    for process in registrations:
        began = time.perf_counter()
        gateway.client_details(client_id=process.client_id)
        figures.details_ms.append((time.perf_counter() - began) * 1000)
    figures.duplicated_rows = _duplicated_rows([p.client_id for p in registrations])
    return figures


def _register(run: str, index: int) -> Process:
    return gateway.client_register(
        email=f"compare-{run}-{index}@example.com",
        first_name="Compare",
        last_name=f"{run}-{index}",
        marketing_consent=index % 2 == 0,
        initiator=gateway.SYSTEM,
    )


def _purchase(client_id: UUID, run: str) -> Process:
    process, _ = gateway.purchase_record(
        client_id=client_id,
        order_ref=f"CMP-{run}",
        total=Decimal("19.90"),
        currency="EUR",
        initiator=gateway.SYSTEM,
    )
    return process


def _wait(process_ids: list[UUID], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_ = Process.objects.filter(pk__in=process_ids).exclude(status__in=FINAL).count()
        if not open_:
            return
        time.sleep(0.1)


def _measure(figures: ModeFigures, process_ids: list[UUID]) -> None:
    processes = Process.objects.filter(pk__in=process_ids)
    figures.processes = len(process_ids)
    for process in processes.filter(status="completed"):
        figures.completed += 1
        assert process.finished_at is not None
        figures.latency_ms.append((process.finished_at - process.started_at).total_seconds() * 1000)
    steps = Step.objects.filter(process_id__in=process_ids).aggregate(sent=Sum("attempts"))
    deliveries = Delivery.objects.filter(process_id__in=process_ids).aggregate(sent=Sum("sends"))
    figures.messages = (steps["sent"] or 0) + (deliveries["sent"] or 0)
    figures.events = EventRecord.objects.filter(process_id__in=process_ids).count()
    trace = TraceEntry.objects.filter(process_id__in=process_ids)
    figures.trace_entries = trace.count()
    figures.retries = trace.filter(kind="retry").count()


def _duplicated_rows(client_ids: list[UUID]) -> int:
    """Rows that copy data another component owns (choreography's replicas)."""
    return reconcile.replica_rows_of(client_ids)
