"""Factories for sales' tables."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory
from django.utils import timezone

from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica, Purchase


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


class CustomerReplicaFactory(factory.django.DjangoModelFactory[CustomerReplica]):
    """Sales' copy of a client, as crm's events left it."""

    class Meta:
        model = CustomerReplica

    client_id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    registered_at = factory.LazyFunction(timezone.now)
    client_version = 1
    as_of = factory.LazyFunction(timezone.now)


class CommunicationReplicaFactory(factory.django.DjangoModelFactory[CommunicationReplica]):
    class Meta:
        model = CommunicationReplica

    id = factory.LazyFunction(uuid.uuid4)
    client_id = factory.LazyFunction(uuid.uuid4)
    channel = "email"
    subject = factory.Sequence(lambda n: f"Subject {n}")
    occurred_at = factory.LazyFunction(timezone.now)
