"""Template filters for traces."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def detail_text(detail: Any) -> str:
    """A trace entry's detail as `key: value` pairs (ids and names only, never personal data)."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    return "; ".join(f"{key}: {_plain(value)}" for key, value in detail.items())


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)
