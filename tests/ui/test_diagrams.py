"""Sequence diagrams drawn on the server: which arrow or note each trace entry becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from staff import diagrams
from staff.diagrams import Row


@dataclass
class Entry:
    seq: int
    component: str
    name: str
    kind: str
    status: str
    attempt: int = 1
    detail: dict[str, Any] | None = None


def test_orchestrated_entries_become_commands_answers_retries_and_notes() -> None:
    trace = [
        Entry(1, "integration", "client_registration", "action", "started"),
        Entry(2, "integration", "create_client", "command", "sent", detail={"to": "crm"}),
        Entry(3, "integration", "create_client", "retry", "timed_out", detail={"to": "crm"}),
        Entry(4, "integration", "create_client", "command", "sent", 2, {"to": "crm"}),
        Entry(5, "crm", "create_client", "step", "done", 2),
        Entry(6, "integration", "client_registration", "action", "running", detail={"by": "ops"}),
        Entry(7, "crm", "create_client", "failure", "failed", 3),
    ]

    rows = [(r.source, r.targets, r.style, r.label) for r in diagrams.trace_rows(trace)]

    assert rows == [
        ("integration", (), "action", "started"),
        ("integration", ("crm",), "command", "create_client"),
        ("integration", (), "retry", "↻ create_client timed_out"),
        ("integration", ("crm",), "command", "create_client (attempt 2)"),
        ("crm", ("integration",), "reply", "create_client done"),
        ("integration", (), "action", "running by ops"),
        ("crm", (), "failure", "✕ create_client failed (attempt 3)"),
    ]


def test_a_delivery_arrow_starts_at_the_component_that_published_the_event() -> None:
    trace = [
        Entry(1, "crm", "ClientCreated", "event", "published", detail={"listeners": ["a.b"]}),
        Entry(2, "sales", "ClientCreated", "delivery", "done", detail={"listener": "sales.x"}),
        Entry(3, "marketing", "ClientCreated", "delivery", "skipped", detail={"listener": "m.y"}),
        Entry(4, "sales", "Unknown", "delivery", "done", detail={"listener": "sales.z"}),
    ]

    rows = [(r.source, r.targets, r.style, r.label) for r in diagrams.trace_rows(trace)]

    assert rows == [
        ("crm", (), "event", "publishes ClientCreated"),
        ("crm", ("sales",), "delivery", "ClientCreated → sales.x"),
        ("crm", ("marketing",), "skipped", "ClientCreated → m.y skipped"),
        ("integration", ("sales",), "delivery", "Unknown → sales.z"),
    ]


def test_the_drawing_has_a_lifeline_per_component_and_escapes_every_label() -> None:
    svg = diagrams.sequence_svg(
        [Row("crm", "<script>alert(1)</script>", "command", ("sales",), number="1")],
        title="A <title>",
    )

    for lane in diagrams.LANES:
        assert f'text-anchor="middle">{lane}</text>' in svg
    assert svg.count('class="lifeline"') == len(diagrams.LANES)
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "A &lt;title&gt;" in svg
    assert 'marker-end="url(#head-command)"' in svg
