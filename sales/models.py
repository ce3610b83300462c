"""Sales owns customer accounts and purchases; a client is known here only by its id."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from common.money import currency_validator


class AccountStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class CustomerAccount(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.UUIDField(unique=True)
    opened_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=10, choices=AccountStatus.choices, default=AccountStatus.OPEN
    )

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"Account of {self.client_id}"


class Purchase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client_id = models.UUIDField(db_index=True)
    # The shop's order number: with the client, the idempotency key of a purchase.
    order_ref = models.CharField(max_length=64)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, validators=[currency_validator])
    purchased_at = models.DateTimeField(default=timezone.now)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-purchased_at", "-recorded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "order_ref"], name="sales_purchase_unique_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_ref}: {self.total} {self.currency}"


class CustomerReplica(models.Model):
    """Sales' copy of a client's profile (choreography), kept by the events crm publishes.

    `client_version` is crm's version of the client when the copy was made: an older or repeated
    event never moves the copy backwards. `as_of` is when the copy was last brought up to date.
    """

    client_id = models.UUIDField(primary_key=True)
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    phone = models.CharField(max_length=40, blank=True)
    company = models.CharField(max_length=200, blank=True)
    marketing_consent = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    client_version = models.PositiveBigIntegerField()
    as_of = models.DateTimeField()

    class Meta:
        ordering = ["last_name", "first_name"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} (v{self.client_version})"


class CommunicationReplica(models.Model):
    """Sales' copy of a client's communication history (choreography)."""

    id = models.UUIDField(primary_key=True)
    client_id = models.UUIDField(db_index=True)
    channel = models.CharField(max_length=10)
    subject = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return self.subject
