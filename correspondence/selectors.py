"""Every read of Correspondence."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from common.errors import NotFound
from correspondence.models import Message, Recipient


def message_list(*, client_id: UUID) -> QuerySet[Message]:
    return Message.objects.filter(client_id=client_id).order_by("-created_at")


def message_get(*, message_id: UUID) -> Message:
    message = Message.objects.filter(id=message_id).first()
    if message is None:
        raise NotFound("Message not found.", extra={"message_id": str(message_id)})
    return message


def recipient_get(*, client_id: UUID) -> Recipient | None:
    return Recipient.objects.filter(client_id=client_id).first()
