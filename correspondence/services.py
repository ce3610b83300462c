"""Every write of Correspondence. Each function is one transaction and raises `common.errors`
types, except a failed delivery, which re-raises the mail error for the caller to retry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django import template as django_template
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.emails import normalise_email
from common.errors import NotFound, ValidationFailed
from common.validation import full_clean_or_raise
from correspondence.defaults import DEFAULT_TEMPLATES
from correspondence.models import (
    ERASED_RECIPIENT,
    SUBJECT_MAX_LENGTH,
    Message,
    MessageStatus,
    Recipient,
    Template,
)


def _shipped(key: str) -> Template:
    """The template as shipped, when staff have not kept one of their own."""
    if key not in DEFAULT_TEMPLATES:
        raise NotFound("Template not found.", extra={"template_key": key})
    return Template(key=key, **DEFAULT_TEMPLATES[key])


def template_render(*, key: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render (subject, body) as plain text; the subject is folded onto one line."""
    template = Template.objects.filter(key=key).first() or _shipped(key)
    plain = django_template.Context(dict(context), autoescape=False)
    try:
        subject = django_template.Template(template.subject).render(plain)
        body = django_template.Template(template.body).render(plain)
    except django_template.TemplateSyntaxError as error:
        raise ValidationFailed(
            "The template cannot be rendered.", errors={"template": [str(error)]}
        ) from None
    # A header cannot hold a line break, and Message.subject has a limit.
    return " ".join(subject.split())[:SUBJECT_MAX_LENGTH], body


def message_send(
    *,
    client_id: UUID,
    recipient: str,
    template_key: str,
    context: Mapping[str, Any],
    reference: str,
) -> Message:
    """Send the template to the recipient once per (template_key, reference).

    A message already sent is returned as it is. The email goes out inside the transaction
    that holds the message row, so two senders of one key cannot both send it. A mail error
    marks the message failed (kept) and is re-raised; a later call renders and tries again.
    """
    reference = reference.strip()
    subject, body = template_render(key=template_key, context=context)
    fields: dict[str, Any] = {
        "client_id": client_id,
        "recipient": normalise_email(recipient),
        "subject": subject,
        "body": body,
    }
    full_clean_or_raise(Message(template_key=template_key, reference=reference, **fields))
    with transaction.atomic():
        message = _claim(template_key=template_key, reference=reference, fields=fields)
        if message.status == MessageStatus.SENT:
            return message
        failure = _deliver(message)
    if failure is not None:
        raise failure
    return message


def _claim(*, template_key: str, reference: str, fields: dict[str, Any]) -> Message:
    message, created = Message.objects.select_for_update().get_or_create(
        template_key=template_key, reference=reference, defaults=fields
    )
    if not created and message.status != MessageStatus.SENT:
        # A retry sends what this call rendered: the address may have been corrected since.
        for name, value in fields.items():
            setattr(message, name, value)
        message.save(update_fields=list(fields))
    return message


def _deliver(message: Message) -> OSError | None:
    """Send the email and record the outcome; returns the mail error instead of raising it, so
    that the failed status is committed."""
    try:
        send_mail(
            message.subject,
            message.body,
            settings.DEFAULT_FROM_EMAIL,
            [message.recipient],
            fail_silently=False,
        )
    except OSError as error:  # smtplib.SMTPException and socket errors are all OSErrors
        message.status = MessageStatus.FAILED
        message.error = f"{type(error).__name__}: {error}"
        message.save(update_fields=["status", "error"])
        return error
    message.status = MessageStatus.SENT
    message.sent_at = timezone.now()
    message.error = ""
    message.save(update_fields=["status", "sent_at", "error"])
    return None


def message_erase_client(*, client_id: UUID) -> None:
    """Keep the client's messages as a record that something was sent, without personal data.

    The error is blanked too: SMTP errors often quote the recipient's address.
    """
    with transaction.atomic():
        Message.objects.filter(client_id=client_id).update(
            recipient=ERASED_RECIPIENT, subject="", body="", error=""
        )


# --- recipients (choreography) ----------------------------------------------------------------


def recipient_apply(*, client_id: UUID, client_version: int, email: str, first_name: str) -> bool:
    """Bring the recipient to this version of the client; False when it holds this or newer."""
    fields = {
        "email": normalise_email(email),
        "first_name": first_name,
        "client_version": client_version,
        "as_of": timezone.now(),
    }
    with transaction.atomic():
        if Recipient.objects.filter(client_id=client_id, client_version__lt=client_version).update(
            **fields
        ):
            return True
        try:
            with transaction.atomic():
                Recipient.objects.create(client_id=client_id, **fields)
        except IntegrityError:
            return False
    return True


def recipient_erase(*, client_id: UUID) -> None:
    Recipient.objects.filter(client_id=client_id).delete()
