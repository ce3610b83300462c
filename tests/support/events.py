"""What a test can say about the events published: name, source and payload of each record."""

from __future__ import annotations

from typing import Any

from integration.models import EventRecord


def published() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, source, payload) of every event recorded, oldest first."""
    return [
        (record.name, record.source, record.payload)
        for record in EventRecord.objects.order_by("published_at", "id")
    ]
