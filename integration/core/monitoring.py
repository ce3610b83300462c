"""Monitoring: processes that stopped moving, and counts for dashboards.

A running process with work pending (an open step or delivery) and no new trace entry for
STUCK_AFTER seconds is stuck; the trace says so, and the initiator is told. Activity moves it back
to running; a person may close it with a reason.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from common import correlation
from integration.core import lifecycle
from integration.core.trace import lock_process
from integration.models import DELIVERY_RUNNABLE, Delivery, Process, ProcessStatus, Step, StepStatus

# Work that should be moving. Held work (a paused component or listener) waits on purpose: a
# process that waits only for it is not stuck.
OPEN_STEPS = (StepStatus.PENDING, StepStatus.SENT, StepStatus.WAITING)


def _work_pending() -> Q:
    steps = Step.objects.filter(process=OuterRef("pk"), status__in=OPEN_STEPS)
    deliveries = Delivery.objects.filter(process=OuterRef("pk"), status__in=DELIVERY_RUNNABLE)
    return Q(Exists(steps)) | Q(Exists(deliveries))


def mark_stuck_processes(*, limit: int = 200) -> int:
    now = timezone.now()
    idle_since = now - timedelta(seconds=settings.STUCK_AFTER)
    candidates = list(
        Process.objects.filter(status=ProcessStatus.RUNNING, last_activity_at__lt=idle_since)
        .filter(_work_pending())
        .values_list("id", flat=True)[:limit]
    )
    marked = 0
    for process_id in candidates:
        with correlation.bound(process_id), transaction.atomic():
            process = lock_process(process_id)
            if process.status != ProcessStatus.RUNNING or process.last_activity_at >= idle_since:
                continue  # it moved while we looked
            idle = (now - process.last_activity_at).total_seconds()
            marked += lifecycle.process_mark_stuck(process=process, idle_seconds=idle)
    return marked
