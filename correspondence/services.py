"""Every write of Correspondence. Each function is one transaction and raises `common.errors`
types, except `message_deliver`: it sends outside every transaction, after the one that claims the
message and before the one that records the outcome, and re-raises a mail error (recorded first)
for the caller to retry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from django import template as django_template
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from common import plain_sql
from common.emails import normalise_email
from common.errors import NotFound, ValidationFailed
from common.recent import Recent
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
from integration import bus

# A message may be sent while it is queued, or failed (a retry).
SENDABLE = (MessageStatus.QUEUED, MessageStatus.FAILED)
SETTLED = (MessageStatus.SENT, MessageStatus.CANCELLED)
# An SMTP session is a handful of exchanges, each bounded by EMAIL_TIMEOUT: a claim older than
# this many of them belongs to a worker that is gone.
SEND_LEASE_TIMEOUTS = 6


def _shipped(key: str) -> Template:
    """The template as shipped, when staff have not kept one of their own."""
    if key not in DEFAULT_TEMPLATES:
        raise NotFound("Template not found.", extra={"template_key": key})
    return Template(key=key, **DEFAULT_TEMPLATES[key])


# Every registration renders the welcome template: its parsed subject and body are kept for a
# moment (common/recent.py). An edit is seen at once in the process that saved it (apps.py), in
# the others within RECENT_MAX_AGE.
_parsed = Recent[tuple[django_template.Template, django_template.Template]]()


def _parse(key: str) -> tuple[django_template.Template, django_template.Template]:
    template = Template.objects.filter(key=key).first() or _shipped(key)
    return django_template.Template(template.subject), django_template.Template(template.body)


def template_forget(*, key: str) -> None:
    """A template changed: render it anew from the next email on."""
    _parsed.forget(key)


def template_render(*, key: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Render (subject, body) as plain text; the subject is folded onto one line."""
    plain = django_template.Context(dict(context), autoescape=False)
    try:
        subject_template, body_template = _parsed.get(key, lambda: _parse(key))
        subject = subject_template.render(plain)
        body = body_template.render(plain)
    except django_template.TemplateSyntaxError as error:
        raise ValidationFailed(
            "The template cannot be rendered.", errors={"template": [str(error)]}
        ) from None
    # A header cannot hold a line break, and Message.subject has a limit.
    return " ".join(subject.split())[:SUBJECT_MAX_LENGTH], body


def message_queue(
    *,
    client_id: UUID,
    recipient: str,
    template_key: str,
    context: Mapping[str, Any],
    reference: str,
) -> Message:
    """Record the intent to send the template, once per (template_key, reference), inside the
    caller's transaction; `message_deliver` sends it after commit.

    A message already recorded is returned as it is: a retry sends the same email with the same
    Message-ID. For a client already erased the row is written cancelled, without personal data.
    """
    return _record(client_id, recipient, template_key, context, reference, claim=False).message


@dataclass(frozen=True)
class Queued:
    """A message recorded to be sent after commit, and whether this caller holds its claim (then
    it sends it with `message_deliver(claimed=True)`)."""

    message: Message
    claimed: bool


def message_queue_claimed(
    *,
    client_id: UUID,
    recipient: str,
    template_key: str,
    context: Mapping[str, Any],
    reference: str,
) -> Queued:
    """As `message_queue`, but a message recorded by this call for a client not erased is recorded
    claimed for sending (`sending`, its first attempt): the caller, once its transaction has
    committed, sends it with `message_deliver(claimed=True)`, which then has only the outcome to
    record. One transaction fewer than claiming it after commit; a caller that dies before
    sending leaves it `sending` until the claim lapses, as one that dies while sending does."""
    return _record(client_id, recipient, template_key, context, reference, claim=True)


def _record(
    client_id: UUID,
    recipient: str,
    template_key: str,
    context: Mapping[str, Any],
    reference: str,
    *,
    claim: bool,
) -> Queued:
    reference = reference.strip()
    subject, body = template_render(key=template_key, context=context)
    fields: dict[str, Any] = {
        "client_id": client_id,
        "recipient": normalise_email(recipient),
        "subject": subject,
        "body": body,
    }
    message = Message(template_key=template_key, reference=reference, **fields)
    if claim:
        message.status = MessageStatus.SENDING
        message.sending_since = timezone.now()
        message.attempts = 1
    full_clean_or_raise(message)
    with transaction.atomic(savepoint=False):  # nothing in it is caught: no savepoint needed
        if not plain_sql.insert_unless_taken(message):  # the (template, reference) index decided
            taken = Message.objects.get(template_key=template_key, reference=reference)
            return Queued(taken, claimed=False)
        if bus.client_erased(client_id=client_id):
            _cancel(message)
            return Queued(message, claimed=False)
    return Queued(message, claimed=claim)


def message_deliver(
    *,
    message_id: UUID,
    on_settled: Callable[[Message], None] | None = None,
    claimed: bool = False,
) -> Message:
    """Send a queued message, outside every transaction and lock, and record the outcome.

    Three steps: a short transaction claims the message (or cancels it when its client is erased:
    nothing is sent) — unless the caller holds the claim already (`claimed`: it recorded the
    message with `message_queue_claimed`, in a transaction that has committed), when the message
    and the erasure tombstone are read once more instead; the send, bounded by EMAIL_TIMEOUT; a
    short transaction records it sent, or failed with the error (which is then re-raised: a later
    call sends it again, with the same Message-ID). `on_settled` runs inside the transaction that
    finds the message sent or cancelled (also when it already was), so that what the caller
    records about it commits with it. Returns the message; `sending` means another worker holds
    it and will settle it.
    """
    if claimed:
        message = plain_sql.get(Message, message_id)
        # Erasure wins: one accepted since the claim's commit cancels the send.
        if _erased(message):
            return _record_outcome(message_id, None, on_settled, sent=False)
    else:
        message, claimed = _claim(message_id, on_settled)
        if not claimed:
            return message
    error = _send(message)
    return _record_outcome(message_id, error, on_settled)


def _claim(message_id: UUID, on_settled: Callable[[Message], None] | None) -> tuple[Message, bool]:
    with transaction.atomic():
        message = plain_sql.locked(Message, message_id)
        if message.status in SENDABLE or _claim_expired(message):
            # Erasure wins: the tombstone is checked under the row's lock, right before sending.
            if not _erased(message):
                message.status = MessageStatus.SENDING
                message.sending_since = timezone.now()
                message.attempts += 1
                plain_sql.update(message, ["status", "sending_since", "attempts"])
                return message, True
            _cancel(message)
        if message.status in SETTLED and on_settled is not None:
            on_settled(message)
        return message, False


def _claim_expired(message: Message) -> bool:
    """A message `sending` for longer than any send can take was claimed by a worker that died
    (perhaps after the server accepted it): it is sent again, with the same Message-ID."""
    if message.status != MessageStatus.SENDING or message.sending_since is None:
        return False
    timeout = float(settings.EMAIL_TIMEOUT or 10)  # always set by config/env.py (default 10 s)
    lease = timedelta(seconds=SEND_LEASE_TIMEOUTS * timeout)
    return message.sending_since < timezone.now() - lease


def _send(message: Message) -> OSError | None:
    """The SMTP exchange, each step bounded by EMAIL_TIMEOUT; returns the mail error instead of
    raising it, so that it is recorded first."""
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient],
        headers={"Message-ID": message.message_id_header},
    )
    try:
        email.send(fail_silently=False)
    except OSError as error:  # smtplib.SMTPException and socket errors (timeouts) are OSErrors
        return error
    return None


# What recording a send's outcome writes; and, for a client erased meanwhile, the personal data
# it blanks (the error is among the outcome's fields).
OUTCOME_FIELDS = ("status", "sending_since", "sent_at", "error")
SCRUBBED_FIELDS = ("recipient", "subject", "body", "erased")


def _record_outcome(
    message_id: UUID,
    error: OSError | None,
    on_settled: Callable[[Message], None] | None,
    *,
    sent: bool = True,
) -> Message:
    """The send's outcome; `sent=False`: the claimed message was not sent (its client erased)."""
    with transaction.atomic():
        message = plain_sql.locked(Message, message_id)
        erased = _erased(message)  # while the send was in flight
        message.sending_since = None
        if error is None and sent:
            message.status = MessageStatus.SENT
            message.sent_at = timezone.now()
            message.error = ""
        elif erased or not sent:
            message.status = MessageStatus.CANCELLED
        else:
            message.status = MessageStatus.FAILED
            message.error = f"{type(error).__name__}: {error}"
        if erased:
            _scrub(message)
        plain_sql.update(message, [*OUTCOME_FIELDS, *(SCRUBBED_FIELDS if erased else ())])
        if message.status in SETTLED and on_settled is not None:
            on_settled(message)
    if error is not None and message.status == MessageStatus.FAILED:
        raise error  # recorded: the caller retries
    return message


def _erased(message: Message) -> bool:
    return message.erased or bus.client_erased(client_id=message.client_id)


def _scrub(message: Message) -> None:
    """No personal data left; the error is blanked too: SMTP errors often quote the address."""
    message.recipient = ERASED_RECIPIENT
    message.subject = ""
    message.body = ""
    message.error = ""
    message.erased = True


def _cancel(message: Message) -> None:
    message.status = MessageStatus.CANCELLED
    message.sending_since = None
    _scrub(message)
    message.save()


def message_erase_client(*, client_id: UUID) -> None:
    """Keep the client's messages as a record that something was sent, without personal data.

    What is not sent yet is cancelled; a send in flight keeps its status, and its outcome is
    recorded without personal data when it ends.
    """
    with transaction.atomic():
        messages = Message.objects.filter(client_id=client_id)
        messages.filter(status__in=SENDABLE).update(
            status=MessageStatus.CANCELLED, sending_since=None
        )
        messages.update(recipient=ERASED_RECIPIENT, subject="", body="", error="", erased=True)


# --- recipients (choreography) ----------------------------------------------------------------


def recipient_apply(*, client_id: UUID, client_version: int, email: str, first_name: str) -> bool:
    """Bring the recipient to this version of the client; False when it holds this or newer."""
    fields = {
        "email": normalise_email(email),
        "first_name": first_name,
        "client_version": client_version,
        "as_of": timezone.now(),
    }
    return plain_sql.insert_or_advance(Recipient(client_id=client_id, **fields))


def recipient_erase(*, client_id: UUID) -> None:
    Recipient.objects.filter(client_id=client_id).delete()
