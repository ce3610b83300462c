"""Customer Relations owns the master record of every client and the history of contacts."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone


class Client(models.Model):
    # The id is handed out by the gateway before crm acts, so services take it from the caller.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    phone = models.CharField(max_length=40, blank=True)
    company = models.CharField(max_length=200, blank=True)
    marketing_consent = models.BooleanField(default=False)
    registered_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Currency code -> decimal string, e.g. {"EUR": "120.50"}: no float ever touches money.
    lifetime_values = models.JSONField(default=dict, blank=True)
    purchase_count = models.PositiveIntegerField(default=0)
    # Replicas elsewhere apply a change only if it carries a higher version than theirs.
    version = models.PositiveBigIntegerField(default=1)
    # What staff search looks in, kept by the database: one trigram index on PostgreSQL answers
    # a term found in any of these fields (terms never hold the spaces that join them).
    search_text = models.GeneratedField(
        expression=Concat(
            "first_name",
            Value(" "),
            "last_name",
            Value(" "),
            "email",
            Value(" "),
            "company",
            output_field=models.TextField(),
        ),
        output_field=models.TextField(),
        db_persist=True,
        editable=False,
    )

    class Meta:
        ordering = ["-registered_at"]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="crm_client_name_idx"),
            models.Index(fields=["company"], name="crm_client_company_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    NOTE = "note", "Note"


class Communication(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="communications")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)
    # An outside identity (e.g. an outbound message id) that makes recording it idempotent.
    reference = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "reference"],
                condition=~Q(reference=""),
                name="crm_communication_unique_reference",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.subject}"


class ErasedClient(models.Model):
    """Tombstone: the id of an erased client, so a late message cannot bring them back."""

    client_id = models.UUIDField(primary_key=True, editable=False)
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return str(self.client_id)
