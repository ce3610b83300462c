"""Factories for marketing's tables."""

from __future__ import annotations

import uuid
from datetime import date

import factory
from django.utils import timezone

from marketing.models import AudienceMember, Campaign, CampaignChannel, Lead, LeadSource


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = CampaignChannel.EMAIL
    starts_on = date(2025, 1, 1)


class LeadFactory(factory.django.DjangoModelFactory[Lead]):
    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    first_name = "Grace"
    last_name = "Hopper"
    source = LeadSource.SHOP
    created_at = factory.LazyFunction(timezone.now)


class AudienceMemberFactory(factory.django.DjangoModelFactory[AudienceMember]):
    class Meta:
        model = AudienceMember

    client_id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    joined_at = factory.LazyFunction(timezone.now)
