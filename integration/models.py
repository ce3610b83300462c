"""The integration layer's own tables: runtime mode, processes and their trace, the outbox of
commands, the processed-message records, the gateway's registry and the shop's API tokens."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class IntegrationMode(models.TextChoices):
    ORCHESTRATION = "orchestration", "Orchestration"
    CHOREOGRAPHY = "choreography", "Choreography"


class RuntimeMode(models.Model):
    """The mode new processes start in: one row, changed by the admin or `integration_mode`."""

    singleton = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    mode = models.CharField(max_length=20, choices=IntegrationMode.choices)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = "runtime integration mode"

    def __str__(self) -> str:
        return self.mode


class ApiToken(models.Model):
    """A shop's bearer token. Only a SHA-256 of the token is kept; it is shown once, at issue."""

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False, help_text="to recognise a token")
    callback_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=128, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ProcessKind(models.TextChoices):
    CLIENT_REGISTRATION = "client_registration", "Client registration"
    CLIENT_UPDATE = "client_update", "Client update"
    PURCHASE = "purchase", "Purchase"
    CLIENT_ERASURE = "client_erasure", "Client erasure"


class ProcessStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STUCK = "stuck", "Stuck"
    CLOSED = "closed", "Closed"


class Process(models.Model):
    """One business process, whoever drives it. Its id is the correlation id of every message,
    trace entry and log line it causes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=30, choices=ProcessKind.choices)
    mode = models.CharField(max_length=20, choices=IntegrationMode.choices)
    status = models.CharField(
        max_length=12, choices=ProcessStatus.choices, default=ProcessStatus.RUNNING
    )
    client_id = models.UUIDField(db_index=True)
    initiator_token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="processes"
    )
    initiator_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="processes",
    )
    # What the steps need (the registration form, the order). Personal data: erasure wipes it.
    input = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)
    trace_count = models.PositiveIntegerField(default=0, editable=False)
    current_step = models.CharField(max_length=60, blank=True)
    # crm's version of the client once this process changed it there (registration, update): what
    # a shop passes as ?min_version= to read its own write.
    client_version = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "processes"
        indexes = [
            models.Index(fields=["status", "last_activity_at"], name="process_status_activity"),
            models.Index(fields=["-started_at"], name="process_started"),
            # The dashboard's counts by status and mode: an index-only scan.
            models.Index(fields=["status", "mode"], name="process_status_mode"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.id}"

    @property
    def correlation_id(self) -> uuid.UUID:
        return self.id


class TraceKind(models.TextChoices):
    COMMAND = "command", "Command"
    EVENT = "event", "Event"
    DELIVERY = "delivery", "Delivery"
    STEP = "step", "Step"
    RETRY = "retry", "Retry"
    FAILURE = "failure", "Failure"
    ACTION = "action", "Action"


class TraceEntry(models.Model):
    """What happened in a process, in order. Ids and names only, never personal data."""

    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="trace")
    seq = models.PositiveIntegerField()
    at = models.DateTimeField()
    component = models.CharField(max_length=20)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=TraceKind.choices)
    status = models.CharField(max_length=20)
    attempt = models.PositiveIntegerField(default=1)
    detail = models.JSONField(null=True, blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["process", "seq"]
        verbose_name_plural = "trace entries"
        constraints = [
            models.UniqueConstraint(fields=["process", "seq"], name="trace_seq_unique"),
        ]
        indexes = [
            # The dashboard's latest failures: a few rows of millions, newest first.
            models.Index(
                fields=["-id"], condition=models.Q(kind="failure"), name="trace_latest_failures"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.seq}. {self.component} {self.name} {self.status}"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending (not on the broker yet)"
    SENT = "sent", "Sent"
    WAITING = "waiting", "Waiting to retry"
    HELD = "held", "Held (component paused)"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class Step(models.Model):
    """A step of an orchestrated process, and the command that carries it out (the outbox row).

    Its id is the command's message id: every copy sent, first try or retry, carries it, so the
    component carries the command out once whatever the number of copies.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=60)
    component = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=StepStatus.choices)
    attempts = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(
        default=0, help_text="runs begun since the last recorded outcome (a crash records none)"
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["process", "position"]
        constraints = [
            models.UniqueConstraint(fields=["process", "position"], name="step_position_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="step_due"),
            # whether a component's workers are getting through its queue (core/backlog.py)
            models.Index(fields=["component", "done_at"], name="step_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.component} ({self.status})"


class ProcessedMessage(models.Model):
    """That a consumer carried out a message: written in the transaction of the effect."""

    message_id = models.UUIDField()
    consumer = models.CharField(max_length=80)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message_id", "consumer"], name="processed_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} {self.message_id}"


class RegisteredEmail(models.Model):
    """The gateway's registry: a normalised email belongs to one client, from the moment its
    registration starts. It answers 409 for a registration still in flight."""

    email = models.CharField(max_length=254, unique=True)
    client_id = models.UUIDField(unique=True)
    process = models.ForeignKey(Process, null=True, blank=True, on_delete=models.SET_NULL)
    registered_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.client_id)


class OrderKey(models.Model):
    """client id + order_ref → the purchase process that recorded it (purchases are idempotent)."""

    client_id = models.UUIDField()
    order_ref = models.CharField(max_length=64)
    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "order_ref"], name="order_once"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.order_ref}"


class ErasedClientId(models.Model):
    """A client erased through the gateway: its id never answers again."""

    client_id = models.UUIDField(primary_key=True)
    erased_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.client_id)


# --- choreography: the event bus ------------------------------------------------------------------


class EventRecord(models.Model):
    """An event as published: written in the publisher's transaction, with one delivery per
    listener enabled at that moment. The payload may hold personal data: erasure wipes it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=60, db_index=True)
    schema_version = models.PositiveSmallIntegerField(default=1)
    source = models.CharField(max_length=20, help_text="the component that published it")
    process = models.ForeignKey(
        Process, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    client_id = models.UUIDField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at"]
        verbose_name = "event"

    def __str__(self) -> str:
        return f"{self.name} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending (not on the broker yet)"
    SENT = "sent", "Sent"
    WAITING = "waiting", "Waiting to retry"
    HELD = "held", "Held (listener paused)"
    DONE = "done", "Done"
    DEAD = "dead", "Dead (out of retries)"
    SKIPPED = "skipped", "Skipped"


# A delivery not settled yet (its process waits for it); the runnable ones go on the broker.
DELIVERY_OPEN = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.WAITING,
    DeliveryStatus.HELD,
)
DELIVERY_RUNNABLE = (DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.WAITING)


class Delivery(models.Model):
    """One event to one listener (the outbox row of choreography). Its id is the message id the
    listener's processed record is keyed on: a replay is a new delivery."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(EventRecord, on_delete=models.CASCADE, related_name="deliveries")
    process = models.ForeignKey(
        Process, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    listener = models.CharField(max_length=80, db_index=True)
    component = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    attempts = models.PositiveIntegerField(default=0, help_text="times the listener ran and raised")
    sends = models.PositiveIntegerField(default=0, help_text="times it was put on the broker")
    runs = models.PositiveIntegerField(
        default=0, help_text="runs begun since the last recorded outcome (a crash records none)"
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    replay = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["listener", "status", "created_at"], name="delivery_backlog"),
            models.Index(fields=["process", "status"], name="delivery_open"),
            models.Index(fields=["component", "done_at"], name="delivery_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.event.name} → {self.listener} ({self.status})"


class ListenerState(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    PAUSED = "paused", "Paused (backlog held)"
    DISABLED = "disabled", "Disabled (gets nothing)"


class ListenerSwitch(models.Model):
    """A listener's switch. A listener with no row is enabled."""

    listener = models.CharField(max_length=80, unique=True)
    state = models.CharField(max_length=10, choices=ListenerState.choices)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["listener"]
        verbose_name_plural = "listener switches"

    def __str__(self) -> str:
        return f"{self.listener} {self.state}"


class AuditEntry(models.Model):
    """What a person (or an operator's command) did to the integration layer."""

    at = models.DateTimeField(auto_now_add=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


class ReconcileRun(models.Model):
    """One comparison of the replicas with their owner (`manage.py reconcile`, the scheduler):
    the differences it found per replica, and how many it repaired."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    by = models.CharField(max_length=150)
    clients = models.PositiveIntegerField(default=0, help_text="clients compared")
    # {"sales.customers": 2, ...}: only the replicas the mode keeps were compared.
    differences = models.JSONField(default=dict, blank=True)
    repaired = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.total} differences"

    @property
    def total(self) -> int:
        return sum(self.differences.values())


# --- the shop API: idempotency and webhooks -------------------------------------------------------


class IdempotencyRecord(models.Model):
    """The first answer to a POST/PATCH with an Idempotency-Key, replayed for the same key and
    body (scoped to token + method + path). In flight until the answer is stored."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    in_flight = models.BooleanField(default=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    client_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token", "key", "method", "path"], name="idempotency_key_scope"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One notification to a shop's callback URL, retried with backoff until a 2xx (24 h)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="webhooks")
    process = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="webhooks")
    event = models.CharField(max_length=30)
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.process_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.status_code or self.error}"


class ComponentState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (maintenance)"


class ComponentSwitch(models.Model):
    """A component under planned maintenance: while paused, its commands (orchestration) and
    deliveries (choreography) wait in the database without spending attempts; resuming sends
    them in order. A component without a row is running."""

    component = models.CharField(max_length=30, unique=True)
    state = models.CharField(
        max_length=10, choices=ComponentState.choices, default=ComponentState.RUNNING
    )
    changed_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component"]

    def __str__(self) -> str:
        return f"{self.component}: {self.state}"


# Upper bounds (seconds from start to finish) of the duration histogram kept in ProcessTally.
# The database triggers hold a copy (migration 0010): change both together, with a migration.
TALLY_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
UNFINISHED = -1  # ProcessTally.bucket of a process not finished


class ProcessTally(models.Model):
    """Kept counts of processes, so that the dashboard, the admin and `/metrics` do not count
    every process at each look. Written only by database triggers on the process table (every
    insert, change of kind, mode, status or times, and delete adds one row taking the old
    figures away and one adding the new), so no write path can forget them; the scheduler folds
    the rows into one per key (integration/core/tally.py). A figure is the sum over its key."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=30)
    mode = models.CharField(max_length=20)
    status = models.CharField(max_length=10)
    # the index in TALLY_DURATION_BUCKETS of the smallest bound the duration fits under
    # (len(...) past the last), or UNFINISHED
    bucket = models.SmallIntegerField()
    processes = models.BigIntegerField()
    seconds = models.FloatField()  # the durations of the finished ones, summed

    def __str__(self) -> str:
        return f"{self.kind} {self.mode} {self.status} [{self.bucket}]: {self.processes:+d}"
