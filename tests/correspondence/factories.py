"""Factories for correspondence's tables. The two templates come from migration 0002."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from correspondence.models import Message, MessageStatus, Recipient, TemplateKey


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    class Meta:
        model = Message

    client_id = factory.LazyFunction(uuid.uuid4)
    template_key = TemplateKey.WELCOME
    recipient = factory.Sequence(lambda n: f"client{n}@example.com")
    subject = "Welcome to Ensemble, Ada"
    body = "Hello Ada,"
    status = MessageStatus.SENT
    reference = factory.Sequence(lambda n: f"ref-{n}")
    created_at = factory.LazyFunction(timezone.now)
    sent_at = factory.SelfAttribute("created_at")


class RecipientFactory(factory.django.DjangoModelFactory[Recipient]):
    """Correspondence's copy of where a client's email goes, as crm's events left it."""

    class Meta:
        model = Recipient

    client_id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    first_name = "Ada"
    client_version = 1
    as_of = factory.LazyFunction(timezone.now)
