"""The runtime integration mode: read when a process starts, kept by the process for its life."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from common.errors import ValidationFailed
from integration.models import AuditEntry, IntegrationMode, RuntimeMode

DEFAULT_MODE = IntegrationMode.ORCHESTRATION


def mode_get() -> str:
    row = RuntimeMode.objects.filter(singleton=1).only("mode").first()
    return row.mode if row else DEFAULT_MODE


def mode_set(*, mode: str, changed_by: str = "") -> str:
    """Switch the mode for processes that start from now on; in-flight ones keep theirs.
    Switching to choreography first fills the replicas from their owners."""
    if mode not in IntegrationMode.values:
        raise ValidationFailed(
            f"unknown mode {mode!r}", errors={"mode": ["Choose orchestration or choreography."]}
        )
    before = mode_get()
    if mode == IntegrationMode.CHOREOGRAPHY and before != mode:
        from integration.replicas import replicas_fill

        replicas_fill(by=changed_by or "system")
    with transaction.atomic():
        RuntimeMode.objects.update_or_create(
            singleton=1, defaults={"mode": mode, "changed_by": changed_by}
        )
        if before != mode:
            AuditEntry.objects.create(
                actor=changed_by or "system",
                action="mode.switch",
                target=mode,
                detail={"from": before},
            )
    return mode


def mode_apply_environment() -> str:
    """INTEGRATION_MODE, when set, becomes the stored mode as a web server starts."""
    if settings.INTEGRATION_MODE:
        return mode_set(mode=settings.INTEGRATION_MODE, changed_by="INTEGRATION_MODE")
    return mode_get()
