"""Correspondence owns the email templates and every outbound message."""

from __future__ import annotations

import uuid
from email.utils import make_msgid, parseaddr

from django import template as django_template
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

ERASED_RECIPIENT = "erased@invalid"
SUBJECT_MAX_LENGTH = 255


class TemplateKey(models.TextChoices):
    WELCOME = "welcome", "Welcome"
    RECEIPT = "receipt", "Receipt"


class Template(models.Model):
    """An email in Django template syntax, rendered as plain text (no HTML escaping)."""

    key = models.CharField(max_length=32, primary_key=True, choices=TemplateKey.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.get_key_display()

    def clean(self) -> None:
        # Staff edit templates in the admin: a syntax error is caught there, not at send time.
        errors = {}
        for name in ("subject", "body"):
            try:
                django_template.Template(getattr(self, name))
            except django_template.TemplateSyntaxError as error:
                errors[name] = [str(error)]
        if errors:
            raise ValidationError(errors)


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (sent again on retry)"
    CANCELLED = "cancelled", "Cancelled (client erased)"


def new_message_id() -> str:
    """The email's Message-ID, made once when the message is queued: every retry sends the same
    one, so a repeated send is recognisable. The sender's domain is used: no DNS lookup."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2]
    return make_msgid(domain=domain or "ensemble.invalid")


class Message(models.Model):
    """An outbound email. Queued in the transaction that decides to send it; sent after commit;
    the outcome recorded in a short transaction of its own (correspondence/services.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    message_id_header = models.CharField(
        max_length=255, unique=True, default=new_message_id, editable=False
    )
    client_id = models.UUIDField(db_index=True)
    template_key = models.CharField(max_length=32, choices=TemplateKey.choices)
    recipient = models.EmailField(max_length=254)
    subject = models.CharField(max_length=SUBJECT_MAX_LENGTH)
    body = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    # With the template key, the idempotency key of a message: a process id, an order ref.
    reference = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="sends started")
    # When the sending worker claimed it: a claim older than the send lease is a dead worker's.
    sending_since = models.DateTimeField(null=True, blank=True)
    erased = models.BooleanField(default=False, help_text="its client was erased: scrubbed")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["template_key", "reference"], name="correspondence_message_unique_ref"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template_key} {self.reference} ({self.status})"


class Recipient(models.Model):
    """Correspondence's copy of where a client's email goes (choreography), kept by crm's events;
    `client_version` keeps an older event from moving it backwards."""

    client_id = models.UUIDField(primary_key=True)
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150)
    client_version = models.PositiveBigIntegerField()
    as_of = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.client_id} (v{self.client_version})"
