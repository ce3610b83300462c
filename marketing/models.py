"""Marketing owns campaigns, the leads they bring and the consent audiences."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

DEFAULT_AUDIENCE = "newsletter"


class CampaignChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SOCIAL = "social", "Social"
    SEARCH = "search", "Search"
    EVENT = "event", "Event"
    REFERRAL = "referral", "Referral"
    OTHER = "other", "Other"


class Campaign(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=10, choices=CampaignChannel.choices)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_on", "name"]

    def __str__(self) -> str:
        return self.name


class LeadSource(models.TextChoices):
    SHOP = "shop", "Shop"
    CAMPAIGN = "campaign", "Campaign"
    REFERRAL = "referral", "Referral"
    EVENT = "event", "Event"
    STAFF = "staff", "Staff"


class Lead(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Blank only once erased: the lead was converted to a client who was then forgotten.
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=10, choices=LeadSource.choices)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    converted_client_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    converted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email or str(self.id)


class AudienceMember(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    audience = models.CharField(max_length=64, default=DEFAULT_AUDIENCE)
    client_id = models.UUIDField(db_index=True)
    email = models.EmailField(max_length=254)
    consent = models.BooleanField(default=True)
    # When the client first joined; leaving and coming back keeps it.
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    # crm's version of the client this membership reflects (choreography keeps it in order).
    client_version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["audience", "-joined_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["audience", "client_id"], name="marketing_audience_unique_client"
            )
        ]

    def __str__(self) -> str:
        return f"{self.audience}: {self.email}"
