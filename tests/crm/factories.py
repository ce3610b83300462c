"""Factories for crm's tables: rows as they are after the services wrote them."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from crm.models import Channel, Client, Communication, ErasedClient


class ClientFactory(factory.django.DjangoModelFactory[Client]):
    class Meta:
        model = Client

    id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Lovelace{n}")
    registered_at = factory.LazyFunction(timezone.now)
    updated_at = factory.SelfAttribute("registered_at")


class CommunicationFactory(factory.django.DjangoModelFactory[Communication]):
    class Meta:
        model = Communication

    client = factory.SubFactory(ClientFactory)
    channel = Channel.EMAIL
    subject = factory.Sequence(lambda n: f"Subject {n}")
    occurred_at = factory.LazyFunction(timezone.now)


class ErasedClientFactory(factory.django.DjangoModelFactory[ErasedClient]):
    class Meta:
        model = ErasedClient

    client_id = factory.LazyFunction(uuid.uuid4)
