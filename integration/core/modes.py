"""The runtime integration mode: read when a process starts, kept by the process for its life."""

from __future__ import annotations

from common.errors import ValidationFailed
from integration.models import IntegrationMode, RuntimeMode

DEFAULT_MODE = IntegrationMode.ORCHESTRATION


def mode_get() -> str:
    row = RuntimeMode.objects.filter(singleton=1).only("mode").first()
    return row.mode if row else DEFAULT_MODE


def mode_set(*, mode: str, changed_by: str = "") -> str:
    """Store the mode for processes that start from now on; in-flight ones keep theirs. People
    switch through `integration.actions.mode_switch` (replicas filled first, audited)."""
    if mode not in IntegrationMode.values:
        raise ValidationFailed(
            f"unknown mode {mode!r}", errors={"mode": ["Choose orchestration or choreography."]}
        )
    RuntimeMode.objects.update_or_create(
        singleton=1, defaults={"mode": mode, "changed_by": changed_by}
    )
    return mode
