"""Factories for sales' tables."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory
from django.utils import timezone

from sales.models import CustomerAccount, Purchase


class CustomerAccountFactory(factory.django.DjangoModelFactory[CustomerAccount]):
    class Meta:
        model = CustomerAccount

    client_id = factory.LazyFunction(uuid.uuid4)


class PurchaseFactory(factory.django.DjangoModelFactory[Purchase]):
    class Meta:
        model = Purchase

    client_id = factory.LazyFunction(uuid.uuid4)
    order_ref = factory.Sequence(lambda n: f"ORD-{n:05d}")
    total = Decimal("49.90")
    currency = "EUR"
    purchased_at = factory.LazyFunction(timezone.now)
