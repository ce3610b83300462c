"""Bar charts as hand-written SVG, drawn on the server: no script, no CDN. Each chart is an
image with an accessible name (`role="img"`, `<title>`, `<desc>`); the page puts a table with the
same figures beside it for whoever cannot see it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# One colour per series (the modes), both legible on white and told apart by the legend.
COLOURS = ("#2f5bd3", "#a86200", "#1d7a46", "#b3261e")
WIDTH = 560
LABEL_WIDTH = 150
VALUE_WIDTH = 72
BAR = 14
GAP = 4
GROUP_GAP = 14
LEGEND = 28


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per category; None: nothing to show


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    shown = round(float(value), 2)  # SQLite's clock keeps milliseconds: 2.0000001 s reads 2 s
    text = f"{shown:,.0f}" if shown.is_integer() else f"{shown:,.2f}"
    return f"{text}{unit}"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str = "",
) -> SafeString:
    """Horizontal bars grouped by category, one bar per series, each labelled with its value."""
    largest = max((v for s in series for v in s.values if v is not None), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    group_height = len(series) * (BAR + GAP) - GAP
    height = LEGEND + len(categories) * (group_height + GROUP_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'class="chart" id="{chart_id}">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]
    x = LABEL_WIDTH
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="16" font-size="12" fill="#1d2330">{escape(one.name)}</text>'
        )
        x += 24 + 8 * len(one.name)
    y = LEGEND
    for position, category in enumerate(categories):
        middle = y + group_height / 2 + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle:.0f}" font-size="12" text-anchor="end" '
            f'fill="#1d2330">{escape(category)}</text>'
        )
        for index, one in enumerate(series):
            value = one.values[position]
            bar_y = y + index * (BAR + GAP)
            length = 0.0 if value is None else max(span * value / largest, 1 if value else 0)
            colour = COLOURS[index % len(COLOURS)]
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{bar_y}" width="{length:.1f}" height="{BAR}" '
                f'fill="{colour}"><title>{escape(one.name)}, {escape(category)}: '
                f"{escape(number(value, unit))}</title></rect>"
                f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{bar_y + BAR - 3}" font-size="11" '
                f'fill="#1d2330">{escape(number(value, unit))}</text>'
            )
        y += group_height + GROUP_GAP
    parts.append(
        f'<line x1="{LABEL_WIDTH}" y1="{LEGEND - 4}" x2="{LABEL_WIDTH}" y2="{height - 6}" '
        'stroke="#d9dee8"/>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text in it is escaped above
