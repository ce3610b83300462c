"""Figures, their ratios to the baselines and targets; the printed table, the JSON and the SVG."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any, Literal

# How a figure meets its target:
#   at_least / at_most   the ratio product/baseline against the target (throughput / latency)
#   below                the product alone against the target (an absolute bound)
#   equal                product and baseline the same (query counts)
#   info                 no target; shown for context
Rule = Literal["at_least", "at_most", "below", "equal", "info"]


@dataclass(frozen=True)
class Figure:
    name: str
    product: float
    baseline: float | None
    unit: str
    rule: Rule = "info"
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not _finite(self.product) or not _finite(self.baseline):
            return None
        if self.baseline == 0:
            return None if self.product else 1.0
        return self.product / self.baseline

    @property
    def met(self) -> bool | None:
        if self.rule == "info":
            return None
        if self.rule == "below":
            return _finite(self.product) and self.target is not None and self.product < self.target
        if self.rule == "equal":
            return self.baseline is not None and self.product == self.baseline
        ratio = self.ratio
        if ratio is None or self.target is None:
            return False
        return ratio >= self.target if self.rule == "at_least" else ratio <= self.target

    @property
    def target_text(self) -> str:
        if self.rule == "info" or (self.target is None and self.rule != "equal"):
            return ""
        if self.rule == "equal":
            return "= baseline"
        if self.rule == "below":
            return f"< {self.target:g} {self.unit}"
        return f"{'≥' if self.rule == 'at_least' else '≤'} {self.target:g}x"

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "target_text": self.target_text,
            "met": self.met,
        }


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


def _number(value: float | None, unit: str = "") -> str:
    if not _finite(value):
        return "—"
    assert value is not None
    text = (
        f"{value:,.0f}"
        if abs(value) >= 100
        else f"{value:.3g}"
        if abs(value) < 1
        else f"{value:.1f}"
    )
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    rows = [("figure", "product", "baseline", "ratio", "target", "met")]
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        met = {True: "yes", False: "no", None: ""}[f.met]
        rows.append(
            (
                f.name,
                _number(f.product, f.unit),
                _number(f.baseline, f.unit),
                ratio,
                f.target_text,
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(figures: list[Figure]) -> str:
    lines = [
        "| figure | product | baseline | ratio | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        lines.append(
            f"| {f.name} | {_number(f.product, f.unit)} | {_number(f.baseline, f.unit)} "
            f"| {ratio} | {f.target_text} | {met} |"
        )
    return "\n".join(lines)


def svg(figures: list[Figure], title: str) -> str:
    """One bar per figure with a ratio: the ratio to its baseline, the target as a tick, green
    when met. Ratios are drawn on a log scale from 1/16 to 16 so that 0.25x and 4x look alike."""
    charted = [f for f in figures if f.ratio is not None and f.ratio > 0]
    label_width, plot_width, row_height, top = 330, 480, 22, 48
    height = top + row_height * len(charted) + 40
    width = label_width + plot_width + 90
    low, high = math.log2(1 / 16), math.log2(16)

    def x(ratio: float) -> float:
        clamped = min(max(math.log2(ratio), low), high)
        return label_width + (clamped - low) / (high - low) * plot_width

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
        '<text x="10" y="38" fill="#555">'
        "ratio product / baseline (log scale); tick = target</text>",
    ]
    for tick in (1 / 16, 1 / 4, 1 / 2, 1, 2, 4, 16):
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{height - 30}" '
            f'stroke="{"#888" if tick == 1 else "#ddd"}"/>'
        )
        parts.append(
            f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="middle" fill="#555">'
            f"{tick:g}x</text>"
        )
    for index, f in enumerate(charted):
        y = top + index * row_height
        assert f.ratio is not None
        colour = {True: "#2e7d32", False: "#c62828", None: "#607d8b"}[f.met]
        start, end = sorted((x(1), x(f.ratio)))
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end">{escape(f.name)}</text>'
        )
        parts.append(
            f'<rect x="{start:.1f}" y="{y + 4}" width="{max(end - start, 1):.1f}" '
            f'height="{row_height - 8}" '
            f'fill="{colour}"><title>{escape(f.name)}: {f.ratio:.2f}x</title></rect>'
        )
        if f.target is not None and f.rule in ("at_least", "at_most"):
            tx = x(f.target)
            parts.append(
                f'<line x1="{tx:.1f}" y1="{y + 1}" x2="{tx:.1f}" y2="{y + row_height - 1}" '
                f'stroke="black" stroke-width="2"/>'
            )
        parts.append(f'<text x="{label_width + plot_width + 8}" y="{y + 14}">{f.ratio:.2f}x</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(out_dir: Path, figures: list[Figure], context: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "bench.json",
        "svg": out_dir / "bench.svg",
        "md": out_dir / "bench.md",
    }
    document = {**context, "figures": [f.as_dict() for f in figures]}
    paths["json"].write_text(json.dumps(document, indent=2, default=str) + "\n")
    paths["svg"].write_text(svg(figures, "Ensemble vs bare baselines"))
    paths["md"].write_text(markdown_table(figures) + "\n")
    return paths
