"""Sequence diagrams of components, drawn on the server as SVG.

One lifeline per component; each row is a message or a note: the orchestrator's commands and the
steps' answers, the events a component publishes and their deliveries to listeners, retries,
failures and people's actions. The same drawing serves a process's trace and the integration
map (who commands or listens to whom), in the spirit of the diagrams that compare orchestration
and choreography. The tables beside each drawing say the same in words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from common.components import BUSINESS_COMPONENTS

LANES = ("integration", *BUSINESS_COMPONENTS)
LANE_SUBTITLES = {"integration": "gateway · orchestrator"}
LANE_WIDTH = 170
ROW_HEIGHT = 30
HEAD_HEIGHT = 64
LEFT = 44
STYLE = """
.lane-head{fill:#eef2fb;stroke:#9aa6bf}
.lane-name{font:600 12px system-ui,sans-serif;fill:#1d2330}
.lane-sub{font:10px system-ui,sans-serif;fill:#5b6475}
.lifeline{stroke:#b4bccb;stroke-dasharray:4 4}
.seq{font:11px system-ui,sans-serif;fill:#5b6475}
.label{font:12px system-ui,sans-serif;fill:#1d2330}
.heading{font:600 13px system-ui,sans-serif;fill:#1d2330}
.arrow{stroke-width:1.6;fill:none}
.command{stroke:#2f5bd3}.reply{stroke:#1d7a46;stroke-dasharray:5 3}
.event{fill:#a86200;stroke:#a86200}.delivery{stroke:#a86200}
.skipped{stroke:#9aa6bf;stroke-dasharray:2 3}
.note{fill:#f6f7fb;stroke:#9aa6bf}.note-retry{fill:#fff1d6;stroke:#a86200}
.note-failure{fill:#fde2e0;stroke:#b3261e}.note-action{fill:#e4ebff;stroke:#2f5bd3}
.note-event{fill:#fff1d6;stroke:#a86200}.off{opacity:.45}
"""


@dataclass(frozen=True)
class Row:
    """One row of a diagram: an arrow from `source` to each target, a note on `source`'s
    lifeline (no targets), or a heading across the drawing (kind "heading")."""

    source: str
    label: str
    style: str
    targets: tuple[str, ...] = ()
    kind: str = "message"
    number: str = ""
    title: str = ""


def lane_x(lane: str) -> int:
    index = LANES.index(lane) if lane in LANES else len(LANES) - 1
    return LEFT + index * LANE_WIDTH + LANE_WIDTH // 2


def sequence_svg(rows: Sequence[Row], *, title: str, description: str = "") -> SafeString:
    width = LEFT + LANE_WIDTH * len(LANES) + 10
    height = HEAD_HEIGHT + ROW_HEIGHT * (len(rows) + 1)
    parts = [
        format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="sequence" role="img" '
            'viewBox="0 0 {} {}" width="{}" height="{}" aria-labelledby="{}-title {}-desc">'
            '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>',
            width,
            height,
            width,
            height,
            _slug(title),
            _slug(title),
            _slug(title),
            title,
            _slug(title),
            description or title,
        ),
        mark_safe(f"<style>{STYLE}</style>{_markers()}"),
        *_lifelines(height),
        *(_row(row, HEAD_HEIGHT + ROW_HEIGHT * (index + 1)) for index, row in enumerate(rows)),
        mark_safe("</svg>"),
    ]
    return mark_safe("".join(parts))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())[:40] or "diagram"


def _markers() -> str:
    heads = []
    for name, colour in (
        ("command", "#2f5bd3"),
        ("reply", "#1d7a46"),
        ("delivery", "#a86200"),
        ("skipped", "#9aa6bf"),
    ):
        heads.append(
            f'<marker id="head-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
            f'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
        )
    return f"<defs>{''.join(heads)}</defs>"


def _lifelines(height: int) -> Iterable[SafeString]:
    for lane in LANES:
        x = lane_x(lane)
        subtitle = LANE_SUBTITLES.get(lane, "")
        yield format_html(
            '<rect class="lane-head" x="{}" y="8" width="{}" height="38" rx="6"/>'
            '<text class="lane-name" x="{}" y="{}" text-anchor="middle">{}</text>'
            '<text class="lane-sub" x="{}" y="40" text-anchor="middle">{}</text>'
            '<line class="lifeline" x1="{}" y1="46" x2="{}" y2="{}"/>',
            x - LANE_WIDTH // 2 + 6,
            LANE_WIDTH - 12,
            x,
            26 if subtitle else 31,
            lane,
            x,
            subtitle,
            x,
            x,
            height - 6,
        )


def _row(row: Row, y: int) -> SafeString:
    number = format_html('<text class="seq" x="6" y="{}">{}</text>', y + 4, row.number)
    if row.kind == "heading":
        body = format_html('<text class="heading" x="{}" y="{}">{}</text>', LEFT, y + 4, row.label)
    elif not row.targets:
        body = _note(row, y)
    else:
        body = mark_safe("".join(_arrow(row, target, y) for target in row.targets))
    hover = format_html("<title>{}</title>", row.title or row.label)
    return format_html("<g>{}{}{}</g>", hover, number, body)


def _note(row: Row, y: int) -> SafeString:
    width = min(LANE_WIDTH * 2 - 16, 16 + 7 * len(row.label))
    left = max(LEFT // 2, lane_x(row.source) - width // 2)  # wide notes stay inside the drawing
    return format_html(
        '<rect class="note note-{}" x="{}" y="{}" width="{}" height="22" rx="4"/>'
        '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
        row.style,
        left,
        y - 11,
        width,
        left + width // 2,
        y + 4,
        row.label,
    )


def _arrow(row: Row, target: str, y: int) -> str:
    start, end = lane_x(row.source), lane_x(target)
    style = escape(row.style)
    if start == end:  # a component tells itself: a small loop
        path = f"M{start},{y - 8} h28 v14 h-26"
        label_x, anchor = start + 34, "start"
    else:
        path = f"M{start},{y} L{end - 4 if end > start else end + 4},{y}"
        label_x, anchor = (start + end) // 2, "middle"
    dot = f'<circle class="event" cx="{start}" cy="{y}" r="4"/>' if row.style == "delivery" else ""
    return (
        f'<path class="arrow {style}" d="{path}" marker-end="url(#head-{style})"/>{dot}'
        f'<text class="label" x="{label_x}" y="{y - 5}" text-anchor="{anchor}">'
        f"{escape(row.label)}</text>"
    )


# --- a process's trace ------------------------------------------------------------------------


def trace_rows(entries: Iterable[Any]) -> list[Row]:
    """The rows of a trace: commands and answers, events and deliveries, retries, failures and
    actions. A delivery's arrow starts at the component that published its event."""
    publishers: dict[str, str] = {}
    rows = []
    for entry in entries:
        detail = entry.detail or {}
        number = str(entry.seq)
        if entry.kind == "event":
            publishers[entry.name] = entry.component
        rows.append(_trace_row(entry, detail, number, publishers))
    return rows


def _trace_row(entry: Any, detail: dict[str, Any], number: str, publishers: dict[str, str]) -> Row:
    again = f" (attempt {entry.attempt})" if entry.attempt > 1 else ""
    title = f"{entry.seq}. {entry.component} {entry.kind} {entry.name}: {entry.status}{again}"
    if entry.kind == "command" and detail.get("to"):
        label = f"{entry.name}{again}"
        return Row(entry.component, label, "command", (detail["to"],), number=number, title=title)
    if entry.kind == "step" and entry.status == "done":
        target = ("integration",)
        return Row(
            entry.component, f"{entry.name} done", "reply", target, number=number, title=title
        )
    if entry.kind == "event":
        listeners = ", ".join(detail.get("listeners", [])) or "no listener"
        label = f"publishes {entry.name}"
        return Row(entry.component, label, "event", number=number, title=f"{title} → {listeners}")
    if entry.kind == "delivery":
        source = publishers.get(entry.name, "integration")
        listener = detail.get("listener", entry.component)
        style = "delivery" if entry.status == "done" else "skipped"
        label = f"{entry.name} → {listener}" + (
            "" if entry.status == "done" else f" {entry.status}"
        )
        return Row(source, label, style, (entry.component,), number=number, title=title)
    marks = {"retry": "↻ ", "failure": "✕ ", "action": ""}
    label = f"{marks.get(entry.kind, '')}{entry.name} {entry.status}{again}"
    if entry.kind == "action":
        label = f"{entry.status}" + (f" by {detail['by']}" if detail.get("by") else "")
    style = entry.kind if entry.kind in marks else "note"
    return Row(entry.component, label, style, number=number, title=title)


def trace_svg(entries: Sequence[Any]) -> SafeString:
    return sequence_svg(
        trace_rows(entries),
        title="Sequence diagram of the trace",
        description="Components as lifelines; each trace entry as an arrow or a note.",
    )


# --- the integration map ------------------------------------------------------------------------


def orchestration_rows(definitions: Iterable[Any]) -> list[Row]:
    """Each process kind, then each step: a command from the orchestrator to its component."""
    rows = []
    for definition in definitions:
        rows.append(Row("integration", _kind_label(definition.kind), "note", kind="heading"))
        for position, step in enumerate(definition.steps, start=1):
            conditional = getattr(step.applies, "__name__", "always") != "always"
            label = step.name + (" (when it applies)" if conditional else "")
            rows.append(
                Row("integration", label, "command", (step.component,), number=str(position))
            )
    return rows


def choreography_rows(
    subscriptions: Iterable[tuple[str, str, list[tuple[str, str, str]]]],
) -> list[Row]:
    """Each event: who publishes it, and a delivery to each listener (greyed when disabled)."""
    rows = []
    for event, publisher, listeners in subscriptions:
        rows.append(Row(publisher, f"publishes {event}", "event"))
        for name, component, state in listeners:
            style = "skipped" if state != "enabled" else "delivery"
            label = name + ("" if state == "enabled" else f" ({state})")
            rows.append(Row(publisher, label, style, (component,)))
    return rows


def _kind_label(kind: str) -> str:
    return kind.replace("_", " ").capitalize()
