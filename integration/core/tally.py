"""Process counts kept by the database (ProcessTally, written by triggers: see the model).

Reading a figure sums a few hundred rows at most, whatever the number of processes: the keys
folded by the scheduler plus the rows the triggers added since. Folding replaces the rows it
read by one row per key, in one statement on PostgreSQL (DELETE … RETURNING feeding the INSERT,
so rows committed meanwhile are neither lost nor counted twice); SQLite has one writer at a
time, so there the same is done in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Max, Sum

from integration.models import TALLY_DURATION_BUCKETS, UNFINISHED, ProcessTally

KEY = ("kind", "mode", "status", "bucket")


def process_counts() -> dict[tuple[str, str, str], int]:
    """Processes by (kind, mode, status); keys without processes left out."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    rows = ProcessTally.objects.order_by().values("kind", "mode", "status")
    for row in rows.annotate(n=Sum("processes")):
        if row["n"]:
            counts[(row["kind"], row["mode"], row["status"])] += row["n"]
    return dict(counts)


def process_total(**exactly: str) -> int:
    """How many processes, of the given kind, mode and status if named."""
    unknown = set(exactly) - {"kind", "mode", "status"}
    if unknown:
        raise ValueError(f"processes are tallied by kind, mode and status, not {unknown}")
    rows = ProcessTally.objects.filter(**exactly)
    return int(rows.aggregate(n=Sum("processes"))["n"] or 0)


@dataclass
class Durations:
    """Finished processes of one kind and mode: how many fit under each bound (cumulative, as
    Prometheus wants), how many in all, and their seconds summed."""

    under: list[int] = field(default_factory=lambda: [0] * len(TALLY_DURATION_BUCKETS))
    count: int = 0
    seconds: float = 0.0


def durations() -> dict[tuple[str, str], Durations]:
    """The duration histogram of finished processes, by (kind, mode)."""
    found: dict[tuple[str, str], Durations] = defaultdict(Durations)
    rows = (
        ProcessTally.objects.exclude(bucket=UNFINISHED)
        .order_by()
        .values("kind", "mode", "bucket")
        .annotate(n=Sum("processes"), total=Sum("seconds"))
    )
    for row in rows:
        if not row["n"]:
            continue
        histogram = found[(row["kind"], row["mode"])]
        histogram.count += row["n"]
        histogram.seconds += row["total"]
        for index in range(row["bucket"], len(TALLY_DURATION_BUCKETS)):
            histogram.under[index] += row["n"]
    return dict(found)


def tally_fold() -> int:
    """Fold the rows into one per key; how many rows were folded."""
    if connection.vendor == "postgresql":
        return _fold_in_one_statement()
    with transaction.atomic():
        last = ProcessTally.objects.aggregate(last=Max("id"))["last"]
        if last is None:
            return 0
        read = ProcessTally.objects.filter(id__lte=last)
        sums = list(read.order_by().values(*KEY).annotate(n=Sum("processes"), total=Sum("seconds")))
        folded, _ = read.delete()
        ProcessTally.objects.bulk_create(
            ProcessTally(
                **{name: row[name] for name in KEY}, processes=row["n"], seconds=row["total"]
            )
            for row in sums
            if row["n"]
        )
    return folded


def _fold_in_one_statement() -> int:
    keys = ", ".join(KEY)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH read AS (DELETE FROM integration_processtally RETURNING *), "
            f"summed AS (SELECT {keys}, SUM(processes) AS processes, SUM(seconds) AS seconds, "
            f"COUNT(*) AS rows FROM read GROUP BY {keys}), "
            f"kept AS (INSERT INTO integration_processtally ({keys}, processes, seconds) "
            f"SELECT {keys}, processes, seconds FROM summed WHERE processes <> 0) "
            "SELECT COALESCE(SUM(rows), 0) FROM summed"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0
