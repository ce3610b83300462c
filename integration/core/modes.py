"""The runtime integration mode: read when a process starts, kept by the process for its life."""

from __future__ import annotations

from django.db import transaction

from common.errors import ValidationFailed
from common.recent import Recent
from integration.models import IntegrationMode, RuntimeMode

DEFAULT_MODE = IntegrationMode.ORCHESTRATION


_recent = Recent[str]()


def mode_get() -> str:
    """The mode new processes start in (another process's switch is seen within
    RECENT_MAX_AGE)."""
    return _recent.get("mode", _stored_mode)


def _stored_mode() -> str:
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
    transaction.on_commit(_recent.forget)
    _recent.forget()
    return mode
