"""Work a server process would otherwise do on its first request or task, done while it starts."""

from __future__ import annotations

from django.core.validators import validate_email


def compile_lazy_patterns() -> None:
    """Django compiles its email address patterns when one is first checked: about 60 ms of CPU
    (the domain pattern's Unicode ranges), paid by the first registration that each web process
    and each worker child served. A worker compiles them before it forks: its children inherit
    them."""
    validate_email("warm-up@example.com")
