"""The two modes side by side, from what really ran (`/integration/compare/`).

Figures per mode and process kind, over the processes *started* in a window, each chart from one
GROUP BY mode, kind in the database:
- processes, and how many finished (completed, failed or closed);
- latency p50/p95: started_at → finished_at of the finished ones (PostgreSQL's percentile_cont;
  on SQLite the rows at the two ranks each percentile reads, found by a window function, and
  interpolated as percentile_cont does);
- messages: the process's commands and event deliveries as the database knows them, one Step
  row per command and one Delivery row per event delivery (what the process asked for); resends
  are counted apart (Step.attempts, Delivery.sends: what went on the broker);
- trace entries, retries (kind retry), processes that failed (moved to failed at least once),
  were stuck (a trace entry with status stuck) or were closed by a person (the close action,
  not the orchestrator's own after an erasure), and the components each kind touched.
Duplicated rows and replica lag are the replicas' state now: their row counts beside the rows of
crm they copy, and the differences the last reconcile found.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.safestring import SafeString

from common.sql import PercentileCont, SecondsBetween, percentile_of_sorted
from integration.choreography import reconcile
from integration.models import (
    Delivery,
    IntegrationMode,
    Process,
    ProcessKind,
    ProcessStatus,
    ReconcileRun,
    Step,
    TraceEntry,
    TraceKind,
)
from staff import charts
from staff.charts import Series

ORCHESTRATOR = "integration"  # who closes a process on its own (an erasure ends the others)
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
WINDOW_LABELS = {"hour": "the last hour", "day": "the last day", "week": "the last week"}
P50, P95 = 0.5, 0.95

Key = tuple[str, str]  # (mode, kind)


@dataclass(frozen=True)
class TimeWindow:
    start: datetime
    end: datetime
    label: str


def window_of(
    *, choice: str = "day", since: Any = None, until: Any = None, now: datetime | None = None
) -> TimeWindow:
    """The last hour, day or week; or whole days from `since` to `until` (both included, in the
    site's time zone), either end open up to now or back to the last week."""
    now = now or timezone.now()
    if since is None and until is None:
        return TimeWindow(now - WINDOWS.get(choice, WINDOWS["day"]), now, WINDOW_LABELS[choice])
    zone = timezone.get_current_timezone()
    start = datetime.combine(since, time.min, zone) if since else now - WINDOWS["week"]
    end = datetime.combine(until + timedelta(days=1), time.min, zone) if until else now
    label = f"{since or start.date()} to {until or 'now'}"
    return TimeWindow(start, end, label)


@dataclass
class KindFigures:
    mode: str
    kind: str
    processes: int = 0
    finished: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    messages: int = 0
    sends: int = 0
    trace_entries: int = 0
    retries: int = 0
    failed: int = 0
    stuck: int = 0
    closed_by_hand: int = 0
    components: list[str] = field(default_factory=list)

    def _per_process(self, total: int) -> float:
        return round(total / self.processes, 2) if self.processes else 0.0

    @property
    def messages_per_process(self) -> float:
        return self._per_process(self.messages)

    @property
    def sends_per_process(self) -> float:
        return self._per_process(self.sends)

    @property
    def trace_entries_per_process(self) -> float:
        return self._per_process(self.trace_entries)


@dataclass(frozen=True)
class ReplicaFigures:
    name: str
    modes: tuple[str, ...]  # the modes that keep this copy up to date
    owner: str  # what of crm's it copies
    owner_rows: int
    rows: int
    differences: int | None  # at the last reconcile (None: not compared then)


@dataclass(frozen=True)
class Comparison:
    window: TimeWindow
    modes: list[str]
    kinds: list[tuple[str, str]]  # (kind, label)
    figures: dict[Key, KindFigures]
    replicas: list[ReplicaFigures]
    reconcile: ReconcileRun | None

    def cell(self, mode: str, kind: str) -> KindFigures:
        return self.figures[(mode, kind)]

    @property
    def components(self) -> list[tuple[str, list[list[str]]]]:
        """(kind's label, the components it touched in each mode)."""
        return [
            (label, [self.figures[(mode, kind)].components for mode in self.modes])
            for kind, label in self.kinds
        ]

    @property
    def duplicated_rows(self) -> int:
        return sum(replica.rows for replica in self.replicas)


def comparison(*, window: TimeWindow) -> Comparison:
    """Every figure of the page: one query per chart (six), plus the last reconcile."""
    modes = list(IntegrationMode.values)
    figures = {
        (mode, kind): KindFigures(mode, kind) for mode in modes for kind in ProcessKind.values
    }
    started = Process.objects.filter(started_at__gte=window.start, started_at__lt=window.end)
    _processes(started, figures)
    _latency(started, figures)
    _messages(window, figures)
    _trace(window, figures)
    _components(window, figures)
    last = reconcile.reconcile_last()
    return Comparison(
        window=window,
        modes=modes,
        kinds=list(ProcessKind.choices),
        figures=figures,
        replicas=_replicas(last),
        reconcile=last,
    )


def _cell(figures: dict[Key, KindFigures], row: dict[str, Any]) -> KindFigures:
    """The figures of a row's mode and kind (its own columns, or its process's)."""
    key = (row.get("mode") or row["process__mode"], row.get("kind") or row["process__kind"])
    if key not in figures:  # a mode or kind no longer defined still shows
        figures[key] = KindFigures(*key)
    return figures[key]


def _processes(started: QuerySet[Process], figures: dict[Key, KindFigures]) -> None:
    rows = (
        started.order_by()
        .values("mode", "kind")
        .annotate(processes=Count("id"), finished=Count("id", filter=Q(finished_at__isnull=False)))
    )
    for row in rows:
        cell = _cell(figures, row)
        cell.processes, cell.finished = row["processes"], row["finished"]


def _latency(started: QuerySet[Process], figures: dict[Key, KindFigures]) -> None:
    finished = started.filter(finished_at__isnull=False).order_by()
    seconds = SecondsBetween("started_at", "finished_at")
    if connection.vendor == "postgresql":
        rows = finished.values("mode", "kind").annotate(
            p50=PercentileCont(seconds, P50), p95=PercentileCont(seconds, P95)
        )
        for row in rows:
            cell = _cell(figures, row)
            cell.p50_seconds, cell.p95_seconds = row["p50"], row["p95"]
        return
    by_key: dict[Key, tuple[int, dict[int, float]]] = {}
    for mode, kind, size, position, value in _ranked_durations(finished, seconds):
        by_key.setdefault((mode, kind), (size, {}))[1][position] = value
    for (mode, kind), (size, values) in by_key.items():
        cell = _cell(figures, {"mode": mode, "kind": kind})
        cell.p50_seconds = percentile_of_sorted(values, size, P50)
        cell.p95_seconds = percentile_of_sorted(values, size, P95)


def _ranked_durations(finished: QuerySet[Process], seconds: SecondsBetween) -> list[tuple]:
    """(mode, kind, size, position, seconds) of only the rows at the ranks the percentiles
    read: each group's durations ranked by a window function, in one query."""
    group = [F("mode"), F("kind")]
    ranked = finished.annotate(
        seconds=seconds,
        position=Window(RowNumber(), partition_by=group, order_by=seconds.asc()) - Value(1),
        size=Window(Count("id"), partition_by=group),
    ).values_list("mode", "kind", "size", "position", "seconds")
    sql, params = ranked.query.sql_with_params()
    wanted = []
    for fraction in (P50, P95):
        low = f"CAST({fraction!r} * (size - 1) AS INTEGER)"
        wanted += [f"position = {low}", f"position = {low} + 1"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT mode, kind, size, position, seconds "
            f"FROM ({sql}) ranked WHERE {' OR '.join(wanted)}",
            params,
        )
        return cursor.fetchall()


def _messages(window: TimeWindow, figures: dict[Key, KindFigures]) -> None:
    """Step rows (commands) and Delivery rows (event deliveries) per mode and kind: one UNION."""
    in_window = {"process__started_at__gte": window.start, "process__started_at__lt": window.end}
    steps = (
        Step.objects.filter(**in_window)
        .order_by()
        .values("process__mode", "process__kind")
        .annotate(rows=Count("id"), sends=Sum("attempts"))
    )
    deliveries = (
        Delivery.objects.filter(**in_window)
        .order_by()
        .values("process__mode", "process__kind")
        .annotate(rows=Count("id"), sends=Sum("sends"))
    )
    for row in steps.union(deliveries, all=True):
        cell = _cell(figures, row)
        cell.messages += row["rows"]
        cell.sends += row["sends"] or 0


def _trace(window: TimeWindow, figures: dict[Key, KindFigures]) -> None:
    process = "process_id"
    closed_by_hand = Q(kind=TraceKind.ACTION, status=ProcessStatus.CLOSED) & ~Q(
        detail__by=ORCHESTRATOR
    )
    rows = (
        TraceEntry.objects.filter(
            process__started_at__gte=window.start, process__started_at__lt=window.end
        )
        .order_by()
        .values("process__mode", "process__kind")
        .annotate(
            entries=Count("id"),
            retries=Count("id", filter=Q(kind=TraceKind.RETRY)),
            failed=Count(
                process,
                distinct=True,
                filter=Q(kind=TraceKind.ACTION, status=ProcessStatus.FAILED),
            ),
            stuck=Count(process, distinct=True, filter=Q(status=ProcessStatus.STUCK)),
            closed_by_hand=Count(process, distinct=True, filter=closed_by_hand),
        )
    )
    for row in rows:
        cell = _cell(figures, row)
        cell.trace_entries, cell.retries = row["entries"], row["retries"]
        cell.failed, cell.stuck, cell.closed_by_hand = (
            row["failed"],
            row["stuck"],
            row["closed_by_hand"],
        )


def _components(window: TimeWindow, figures: dict[Key, KindFigures]) -> None:
    rows = (
        TraceEntry.objects.filter(
            process__started_at__gte=window.start, process__started_at__lt=window.end
        )
        .order_by()
        .values_list("process__mode", "process__kind", "component")
        .distinct()
    )
    touched: dict[Key, set[str]] = defaultdict(set)
    for mode, kind, component in rows:
        touched[(mode, kind)].add(component)
    for key, components in touched.items():
        _cell(figures, {"mode": key[0], "kind": key[1]}).components = sorted(components)


# --- the replicas ---------------------------------------------------------------------------


def _replicas(last: ReconcileRun | None) -> list[ReplicaFigures]:
    """Each replica's rows beside its owner's (counted in one query)."""
    counts = reconcile.replica_row_counts()
    differences = last.differences if last else {}
    found = []
    for replica in reconcile.REPLICAS:
        owner, rows, owner_rows = counts[replica.name]
        modes = tuple(IntegrationMode.values) if replica.both_modes else ("choreography",)
        found.append(
            ReplicaFigures(
                name=replica.name,
                modes=modes,
                owner=owner,
                rows=rows,
                owner_rows=owner_rows,
                differences=differences.get(replica.name),
            )
        )
    return found


# --- the page: charts and their tables -------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    chart_id: str
    title: str
    headings: list[str]  # the series (the modes)
    rows: list[tuple[str, list[str]]]  # (category, the figure of each series) for the table
    svg: SafeString


# (figure, title, what it shows, unit)
MODE_CHARTS = (
    ("processes", "Processes that ran", "processes started in the window", ""),
    ("p50_seconds", "Latency p50", "median seconds from start to finish", " s"),
    ("p95_seconds", "Latency p95", "95th percentile of seconds from start to finish", " s"),
    (
        "messages_per_process",
        "Messages per process",
        "commands (Step rows) and event deliveries (Delivery rows) per process",
        "",
    ),
    (
        "sends_per_process",
        "Broker sends per process",
        "commands and deliveries put on the broker per process, resends included",
        "",
    ),
    ("trace_entries_per_process", "Trace entries per process", "trace entries per process", ""),
    ("retries", "Retries", "trace entries of kind retry", ""),
    ("failed", "Failed processes", "processes that moved to failed at least once", ""),
    ("stuck", "Stuck processes", "processes that were stuck at least once", ""),
    ("closed_by_hand", "Closed by hand", "processes a person closed", ""),
)


@dataclass(frozen=True)
class ComparePage:
    comparison: Comparison
    charts: list[Chart]
    replica_chart: Chart


def compare_page(*, window: TimeWindow) -> ComparePage:
    found = comparison(window=window)
    labels = dict(found.kinds)
    kinds = [kind for kind, _ in found.kinds] + sorted(
        {kind for _, kind in found.figures} - set(labels)
    )
    charts = []
    for figure, title, what, unit in MODE_CHARTS:
        series = [
            Series(mode, [getattr(found.cell(mode, kind), figure) for kind in kinds])
            for mode in found.modes
        ]
        charts.append(
            _chart(
                chart_id=f"chart-{figure.replace('_', '-')}",
                title=title,
                description=f"{title}: {what}, per process kind, for each mode, "
                f"{found.window.label}.",
                categories=[labels.get(kind, kind) for kind in kinds],
                series=series,
                unit=unit,
            )
        )
    replica_chart = _chart(
        chart_id="chart-replicas",
        title="Duplicated rows",
        description="Rows each replica holds beside the rows of crm it copies, now.",
        categories=[replica.name for replica in found.replicas],
        series=[
            Series("replica rows", [replica.rows for replica in found.replicas]),
            Series("crm rows copied", [replica.owner_rows for replica in found.replicas]),
        ],
    )
    return ComparePage(comparison=found, charts=charts, replica_chart=replica_chart)


def _chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: list[str],
    series: list[Series],
    unit: str = "",
) -> Chart:
    svg = charts.bar_chart(
        chart_id=chart_id,
        title=title,
        description=description,
        categories=categories,
        series=series,
        unit=unit,
    )
    rows = [
        (category, [charts.number(one.values[index], unit) for one in series])
        for index, category in enumerate(categories)
    ]
    return Chart(chart_id, title, [one.name for one in series], rows, svg)
