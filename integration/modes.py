"""The runtime integration mode: read when a process starts, kept by the process for its life."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from common.errors import ValidationFailed
from integration.models import IntegrationMode, RuntimeMode

DEFAULT_MODE = IntegrationMode.ORCHESTRATION


def mode_get() -> str:
    row = RuntimeMode.objects.filter(singleton=1).only("mode").first()
    return row.mode if row else DEFAULT_MODE


@transaction.atomic
def mode_set(*, mode: str, changed_by: str = "") -> str:
    """Switch the mode for processes that start from now on; in-flight ones keep theirs."""
    if mode not in IntegrationMode.values:
        raise ValidationFailed(
            f"unknown mode {mode!r}", errors={"mode": ["Choose orchestration or choreography."]}
        )
    RuntimeMode.objects.update_or_create(
        singleton=1, defaults={"mode": mode, "changed_by": changed_by}
    )
    return mode


def mode_apply_environment() -> str:
    """INTEGRATION_MODE, when set, becomes the stored mode as a web server starts."""
    if settings.INTEGRATION_MODE:
        return mode_set(mode=settings.INTEGRATION_MODE, changed_by="INTEGRATION_MODE")
    return mode_get()
