"""Factories for correspondence's tables. The two templates come from migration 0002."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from correspondence.models import Message, MessageStatus, TemplateKey


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
