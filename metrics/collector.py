"""The figures `/metrics` exposes, read from the database at each scrape: every web process
answers the same, whichever the scraper reaches, and nothing is counted in memory.

Four queries a scrape, none of them per row of anything:
1. processes per kind, mode and status, and
2. the duration histogram of finished processes: both from the counts the database keeps
   (integration/core/tally.py), a few hundred rows whatever the number of processes;
3. the open commands and deliveries per component, the dead deliveries and the oldest row not yet
   on the broker (one UNION of two GROUP BYs on the status-indexed outbox tables);
4. the last reconcile's differences per replica.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min, Q, Value
from django.db.models.fields import IntegerField
from django.utils import timezone
from prometheus_client.core import (
    CollectorRegistry,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from common.components import COMPONENTS
from integration.core import tally
from integration.models import (
    DELIVERY_OPEN,
    TALLY_DURATION_BUCKETS,
    Delivery,
    DeliveryStatus,
    IntegrationMode,
    ProcessKind,
    ProcessStatus,
    ReconcileRun,
    Step,
    StepStatus,
)

# Seconds from start to finish: a registration takes well under a second when all is well,
# seconds with retries, minutes when a component is down; STUCK_AFTER is 300 s by default.
DURATION_BUCKETS = TALLY_DURATION_BUCKETS
STEP_OPEN = (StepStatus.PENDING, StepStatus.SENT, StepStatus.WAITING, StepStatus.HELD)


class EnsembleCollector:
    """A prometheus_client custom collector: `collect()` runs at each scrape."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield self._processes()
        yield self._durations()
        yield from self._outbox(now)
        yield self._replica_drift()

    def _processes(self) -> Metric:
        family = GaugeMetricFamily(
            "ensemble_processes",
            "Processes by kind, mode and status.",
            labels=["kind", "mode", "status"],
        )
        counts = tally.process_counts()
        # Every combination, zeros included: a series that vanishes reads as "no data".
        keys = {
            (kind, mode, status)
            for kind in ProcessKind.values
            for mode in IntegrationMode.values
            for status in ProcessStatus.values
        } | set(counts)
        for key in sorted(keys):
            family.add_metric(list(key), counts.get(key, 0))
        return family

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "ensemble_process_duration_seconds",
            "Seconds from start to finish of finished (completed, failed, closed) processes.",
            labels=["kind", "mode"],
        )
        found = tally.durations()
        keys = {(k, m) for k in ProcessKind.values for m in IntegrationMode.values} | set(found)
        for kind, mode in sorted(keys):
            histogram = found.get((kind, mode), tally.Durations())
            cumulative = [
                (_le(bound), under)
                for bound, under in zip(DURATION_BUCKETS, histogram.under, strict=True)
            ]
            family.add_metric(
                [kind, mode],
                buckets=[*cumulative, ("+Inf", histogram.count)],
                sum_value=histogram.seconds,
            )
        return family

    def _outbox(self, now: datetime) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "ensemble_backlog",
            "Commands (open or held steps) and event deliveries (open or held) waiting, "
            "per component.",
            labels=["component"],
        )
        dead = GaugeMetricFamily(
            "ensemble_dead_deliveries", "Event deliveries out of retries, waiting for a person."
        )
        oldest = GaugeMetricFamily(
            "ensemble_outbox_oldest_seconds",
            "Age of the oldest command or delivery not yet on the broker (0 when none).",
        )
        pending = Q(status=StepStatus.PENDING)
        steps = (
            Step.objects.filter(status__in=STEP_OPEN)
            .order_by()
            .values("component")
            .annotate(
                waiting=Count("id"),
                dead=Value(0, output_field=IntegerField()),
                oldest=Min("created_at", filter=pending),
            )
        )
        deliveries = (
            Delivery.objects.filter(status__in=(*DELIVERY_OPEN, DeliveryStatus.DEAD))
            .order_by()
            .values("component")
            .annotate(
                waiting=Count("id", filter=Q(status__in=DELIVERY_OPEN)),
                dead=Count("id", filter=Q(status=DeliveryStatus.DEAD)),
                oldest=Min("created_at", filter=Q(status=DeliveryStatus.PENDING)),
            )
        )
        waiting: dict[str, int] = defaultdict(int, dict.fromkeys(COMPONENTS, 0))
        dead_total = 0
        first: datetime | None = None
        for row in steps.union(deliveries, all=True):
            waiting[row["component"]] += row["waiting"]
            dead_total += row["dead"]
            if row["oldest"] is not None and (first is None or row["oldest"] < first):
                first = row["oldest"]
        for component in sorted(waiting):
            backlog.add_metric([component], waiting[component])
        dead.add_metric([], dead_total)
        oldest.add_metric([], max((now - first).total_seconds(), 0.0) if first else 0.0)
        yield backlog
        yield dead
        yield oldest

    def _replica_drift(self) -> Metric:
        family = GaugeMetricFamily(
            "ensemble_replica_drift",
            "Differences the last reconcile found between each replica and its owner.",
            labels=["replica"],
        )
        last = ReconcileRun.objects.order_by("-started_at", "-id").first()
        for replica, differences in sorted((last.differences if last else {}).items()):
            family.add_metric([replica], differences)
        return family


def _le(bound: float) -> str:
    return repr(float(bound))


# Its own registry: the figures are the product's, not this process's (no process or GC
# metrics, which would differ from one web process to the next).
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(EnsembleCollector())
