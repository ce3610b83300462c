"""The bench's table, ratios, targets and chart, on made-up figures."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

from benchmarks import report
from benchmarks.http_load import LoadResult
from benchmarks.report import Figure
from benchmarks.run import count_text, figures_from, merged_pages


def test_a_throughput_meets_its_target_as_a_share_of_the_baseline() -> None:
    figure = Figure("accept req/s", 460.0, 900.0, "req/s", "at_least", 0.5)

    assert figure.ratio == 460 / 900
    assert figure.met is True
    assert Figure("accept req/s", 440.0, 900.0, "req/s", "at_least", 0.5).met is False


def test_a_latency_meets_its_target_as_a_multiple_of_the_baseline() -> None:
    assert Figure("p99", 20.0, 10.0, "ms", "at_most", 2.0).met is True
    assert Figure("p99", 21.0, 10.0, "ms", "at_most", 2.0).met is False


def test_absolute_equal_and_informative_figures() -> None:
    assert Figure("mode switch", 12.0, None, "s", "below", 30.0).met is True
    assert Figure("mode switch", 30.0, None, "s", "below", 30.0).met is False
    assert Figure("queries", 4, 4, "", "equal").met is True
    assert Figure("queries", 5, 4, "", "equal").met is False
    assert Figure("healthz", 900.0, 2000.0, "req/s").met is None


def test_a_missing_measurement_has_no_ratio_and_is_not_met() -> None:
    figure = Figure("burst", math.nan, 300.0, "/s", "at_least", 0.5)

    assert figure.ratio is None
    assert figure.met is False


def test_the_table_has_one_line_per_figure_with_ratio_target_and_verdict() -> None:
    figures = [
        Figure("accept req/s", 460.0, 900.0, "req/s", "at_least", 0.5),
        Figure("p99", 30.0, 10.0, "ms", "at_most", 2.0),
    ]

    lines = report.table(figures).splitlines()

    assert lines[0].split() == ["figure", "product", "baseline", "ratio", "target", "met"]
    assert len(lines) == 4
    assert lines[2].endswith("0.51  ≥ 0.5x  yes")
    assert lines[3].endswith("3.00    ≤ 2x   no")


def test_the_chart_is_svg_with_a_bar_per_ratio_and_the_files_are_written(tmp_path) -> None:
    figures = [
        Figure("accept req/s", 460.0, 900.0, "req/s", "at_least", 0.5),
        Figure("mode switch", 3.0, None, "s", "below", 30.0),
        Figure("p99", 30.0, 10.0, "ms", "at_most", 2.0),
    ]

    paths = report.write(tmp_path, figures, {"machine": {"cpus": 2}})

    svg = ET.parse(paths["svg"]).getroot()
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")[1:]  # the first is the background
    assert [bar.get("fill") for bar in bars] == ["#2e7d32", "#c62828"]
    document = json.loads(paths["json"].read_text())
    assert document["machine"] == {"cpus": 2}
    assert [f["met"] for f in document["figures"]] == [True, True, False]
    assert paths["md"].read_text().startswith("| figure | product |")


def _load(per_second: float, p99: float, status: int = 200) -> LoadResult:
    return LoadResult(
        "x",
        elapsed=1.0,
        latencies_ms=[1.0] * int(per_second - 1) + [p99],
        statuses=[status] * int(per_second),
    )


def test_the_figures_come_from_every_measurement() -> None:
    # each figure's baseline, measured just before it
    bare = {
        "create": _load(900, 20),
        "retrieve_choreography": _load(1500, 10),
        "retrieve_orchestration": _load(1000, 10),
        "trivial": _load(2000, 5),
        "chain_choreography": {"single_median_seconds": 0.02, "burst": {"per_second": 100.0}},
        "chain_orchestration": {"single_median_seconds": 0.04, "burst": {"per_second": 80.0}},
    }
    burst = {"accepted": 300, "completed": 300, "seconds": 6.0, "per_second": 50.0}
    product = {
        "accept": _load(450, 30, 202),
        "details_choreography": _load(1000, 20),
        "details_orchestration": _load(300, 60),
        "burst_choreography": burst,
        "burst_orchestration": burst,
        "single_choreography": [0.05, 0.03, 0.04],
        "single_orchestration": [0.05],
        "healthz": _load(1800, 6),
        "rss_before": {"web": 100 * 2**20, "worker": 600 * 2**20},
        "rss_after": {"web": 105 * 2**20, "worker": 700 * 2**20},
        "memory_work": {"processes": 4000, "lookups": 10000},
        "drain": {"accepted": 1500, "completed": 1500, "seconds": 30.0},
    }
    page = {"best_ms": 5.0, "median_ms": 10.0, "queries": 4}
    scale = {
        "small": {"clients": 1000, "pages": {"dashboard": page}},
        "large": {
            "clients": 100_000,
            "processes": 200_000,
            "trace_entries": 2_000_000,
            "load_seconds": 60.0,
            "mode_switch_seconds": 4.0,
            "pages": {"dashboard": {"best_ms": 5.5, "median_ms": 13.0, "queries": 4}},
        },
    }

    figures = {f.name: f for f in figures_from(bare, product, scale)}

    assert figures["accept (POST /clients/, 202) req/s"].met is True
    assert figures["burst of 300: completed/s, choreography"].ratio == 0.5
    assert figures["burst of 300: completed/s, orchestration"].ratio == 0.625
    assert figures["details, choreography req/s"].ratio == 1000 / 1500
    assert figures["details, orchestration req/s"].ratio == 0.3
    assert figures["one registration end to end, choreography"].product == 40.0
    assert figures["one registration end to end, orchestration"].ratio == 1.25
    assert figures["worker RSS after 4,000 processes + 10,000 lookups"].met is False
    assert figures["dashboard 100k/1k"].met is False
    assert figures["dashboard queries"].met is True
    assert figures["integration_mode choreography at 100,000 clients"].met is True


def test_counts_read_as_thousands_when_round() -> None:
    assert [count_text(n) for n in (50, 1000, 100_000, 1500)] == ["50", "1k", "100k", "1500"]


def test_the_rounds_of_a_page_merge_into_its_best_median_and_largest_query_count() -> None:
    def run(timings: list[float], queries: int, status: int = 200) -> dict[str, object]:
        return {"path": "/", "status": status, "timings_ms": timings, "queries": queries}

    merged = merged_pages(
        [{"dashboard": run([12.0, 30.0], 7)}, {"dashboard": run([9.0, 14.0, 20.0], 8, 500)}]
    )["dashboard"]

    assert merged["best_ms"] == 9.0
    assert merged["median_ms"] == 14.0
    assert merged["timings_ms"] == [12.0, 30.0, 9.0, 14.0, 20.0]
    assert merged["queries"] == 8
    assert merged["status"] == 500
    assert merged["explain"] == []
