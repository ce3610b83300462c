from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from pytest_django.fixtures import Settings

from common.errors import NotFound, ValidationFailed
from correspondence import services
from correspondence.models import ERASED_RECIPIENT, Message, MessageStatus, Template
from correspondence.services import (
    message_deliver,
    message_erase_client,
    message_queue,
    message_queue_claimed,
    template_render,
)
from integration.models import ErasedClientId
from tests.correspondence.factories import MessageFactory

pytestmark = pytest.mark.django_db

REFUSING_BACKEND = "tests.correspondence.mail.RefusingBackend"
TIMING_OUT_BACKEND = "tests.correspondence.mail.TimingOutBackend"
MESSAGE_ID = re.compile(r"^<[^@<>\s]+@ensemble\.invalid>$")
WELCOME_BODY = (
    "Hello Ada,\n"
    "\n"
    "Thank you for registering with Ensemble. Your account is ready, and from now on\n"
    "we will keep you informed about your orders.\n"
    "\n"
    "The Ensemble team\n"
)


def welcome_arguments(**overrides: Any) -> dict[str, Any]:
    """The arguments that queue a welcome for a new client."""
    return {
        "client_id": uuid.uuid4(),
        "recipient": "ada@example.com",
        "template_key": "welcome",
        "context": {"first_name": "Ada"},
        "reference": "process-1",
        **overrides,
    }


def queue_welcome(**overrides: Any) -> Message:
    return message_queue(**welcome_arguments(**overrides))


def scrubbed(message: Message) -> tuple[Any, ...]:
    return (
        message.status,
        message.recipient,
        message.subject,
        message.body,
        message.error,
        message.erased,
    )


# --- template_render -----------------------------------------------------------------------------


def test_template_render_renders_the_seeded_welcome() -> None:
    subject, body = template_render(key="welcome", context={"first_name": "Ada"})
    assert subject == "Welcome to Ensemble, Ada"
    assert body == WELCOME_BODY


def test_template_render_renders_the_seeded_receipt() -> None:
    subject, body = template_render(
        key="receipt", context={"order_ref": "ORD-7", "total": "49.90", "currency": "EUR"}
    )
    assert subject == "Your receipt for order ORD-7"
    assert body == (
        "Hello,\n\nThank you for your order ORD-7.\n\nTotal: 49.90 EUR\n\nThe Ensemble team\n"
    )


def test_template_render_is_plain_text_and_keeps_the_subject_on_one_line() -> None:
    # when the context holds HTML-special characters and a line break
    subject, body = template_render(key="welcome", context={"first_name": "O'Brien &\n<Co>"})

    # then nothing is escaped and the subject is folded onto one line
    assert subject == "Welcome to Ensemble, O'Brien & <Co>"
    assert body.startswith("Hello O'Brien &\n<Co>,\n")


def test_template_render_of_an_unknown_template_is_not_found() -> None:
    with pytest.raises(NotFound) as raised:
        template_render(key="farewell", context={})
    assert raised.value.extra == {"template_key": "farewell"}


def test_template_render_reports_a_broken_template() -> None:
    # given a template edited into invalid syntax
    Template.objects.filter(key="welcome").update(body="{% if %}")

    # when it is rendered
    with pytest.raises(ValidationFailed) as raised:
        template_render(key="welcome", context={})

    # then the template is named as the problem
    assert list(raised.value.errors) == ["template"]


def test_a_rendered_template_is_kept_and_an_edit_saved_here_is_seen_at_once(
    settings: Settings, django_assert_num_queries: Any
) -> None:
    settings.RECENT_MAX_AGE = 3600
    assert template_render(key="welcome", context={"first_name": "Ada"})[0] == (
        "Welcome to Ensemble, Ada"
    )
    with django_assert_num_queries(0):  # kept: neither read nor parsed again
        template_render(key="welcome", context={"first_name": "Bo"})

    # when staff save an edit in this process (the admin)
    template = Template.objects.get(key="welcome")
    template.subject = "Hello {{ first_name }}"
    template.save()

    # then the next email uses it
    assert template_render(key="welcome", context={"first_name": "Ada"})[0] == "Hello Ada"


def test_an_edit_made_in_another_process_is_seen_when_the_kept_copy_lapses(
    settings: Settings,
) -> None:
    settings.RECENT_MAX_AGE = 3600
    template_render(key="welcome", context={"first_name": "Ada"})
    # an edit no signal of this process hears (another process saved it)
    Template.objects.filter(key="welcome").update(subject="Hello {{ first_name }}")

    assert template_render(key="welcome", context={"first_name": "Ada"})[0] == (
        "Welcome to Ensemble, Ada"
    )
    settings.RECENT_MAX_AGE = 0  # the moment has passed
    assert template_render(key="welcome", context={"first_name": "Ada"})[0] == "Hello Ada"


# --- message_queue -------------------------------------------------------------------------------


def test_message_queue_records_the_intent_and_sends_nothing(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a client
    client_id = uuid.uuid4()

    # when the welcome email is queued
    message = queue_welcome(client_id=client_id, recipient=" Ada@EXAMPLE.com ")

    # then one queued message holds it as rendered, with its own Message-ID, and nothing left
    stored = Message.objects.get()
    assert stored == message
    assert (stored.client_id, stored.template_key, stored.reference) == (
        client_id,
        "welcome",
        "process-1",
    )
    assert (stored.recipient, stored.subject, stored.body) == (
        "Ada@example.com",
        "Welcome to Ensemble, Ada",
        WELCOME_BODY,
    )
    assert (stored.status, stored.attempts, stored.sent_at, stored.error) == (
        MessageStatus.QUEUED,
        0,
        None,
        "",
    )
    assert MESSAGE_ID.match(stored.message_id_header)
    assert len(mailoutbox) == 0


def test_message_queue_is_idempotent_on_template_and_reference() -> None:
    # given a queued welcome
    first = queue_welcome(reference="process-1")

    # when it is queued again with the same reference
    second = queue_welcome(reference="process-1", context={"first_name": "Other"})

    # then the first message is returned as it was, with the same Message-ID
    assert second.id == first.id
    assert (second.subject, second.message_id_header) == (
        "Welcome to Ensemble, Ada",
        first.message_id_header,
    )
    assert Message.objects.count() == 1


def test_message_queue_references_are_per_template() -> None:
    # when a welcome and a receipt share a reference
    welcome = queue_welcome(reference="same")
    receipt = queue_welcome(
        template_key="receipt",
        context={"order_ref": "ORD-1", "total": "1.00", "currency": "EUR"},
        reference="same",
    )

    # then they are two messages, each with its own Message-ID
    assert Message.objects.count() == 2
    assert welcome.message_id_header != receipt.message_id_header


def test_message_queue_for_an_erased_client_writes_the_row_cancelled_and_scrubbed() -> None:
    # given the client's erasure was accepted
    client_id = uuid.uuid4()
    ErasedClientId.objects.create(client_id=client_id)

    # when a welcome is queued for them
    message = queue_welcome(client_id=client_id)

    # then the row holds no personal data and will never be sent
    stored = Message.objects.get()
    assert stored.id == message.id
    assert scrubbed(stored) == (MessageStatus.CANCELLED, ERASED_RECIPIENT, "", "", "", True)


def test_message_queue_validates_the_recipient_and_reference() -> None:
    with pytest.raises(ValidationFailed) as raised:
        queue_welcome(recipient="nope", reference=" ")
    assert raised.value.errors == {
        "recipient": ["Enter a valid email address."],
        "reference": ["This field cannot be blank."],
    }
    assert Message.objects.count() == 0


def test_message_queue_with_an_unknown_template_is_not_found() -> None:
    with pytest.raises(NotFound):
        queue_welcome(template_key="farewell")
    assert Message.objects.count() == 0


# --- message_deliver -----------------------------------------------------------------------------


def test_message_deliver_sends_the_queued_message_and_records_it_sent(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given a queued welcome
    queued = queue_welcome()
    settled: list[tuple[str, int]] = []

    # when it is delivered
    message = message_deliver(
        message_id=queued.id,
        on_settled=lambda m: settled.append((m.status, Message.objects.count())),
    )

    # then exactly one email left, as rendered, with the stored Message-ID
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert (email.subject, email.body) == ("Welcome to Ensemble, Ada", WELCOME_BODY)
    assert (email.to, email.from_email) == (["ada@example.com"], settings.DEFAULT_FROM_EMAIL)
    assert email.message()["Message-ID"] == queued.message_id_header
    # and the message is sent, once, and the caller heard it in the recording transaction
    stored = Message.objects.get()
    assert stored == message
    assert (stored.status, stored.attempts, stored.error, stored.sending_since) == (
        MessageStatus.SENT,
        1,
        "",
        None,
    )
    assert stored.sent_at is not None
    assert settled == [(MessageStatus.SENT, 1)]


def test_message_deliver_of_a_sent_message_sends_nothing(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a welcome delivered once
    first = message_deliver(message_id=queue_welcome().id)
    settled: list[str] = []

    # when it is delivered again (a copy of the step, a retry after a crash)
    again = message_deliver(message_id=first.id, on_settled=lambda m: settled.append(m.status))

    # then no second email leaves, and the caller is told it was sent
    assert len(mailoutbox) == 1
    assert (again.status, again.attempts, again.sent_at) == (
        MessageStatus.SENT,
        1,
        first.sent_at,
    )
    assert settled == [MessageStatus.SENT]


def test_message_deliver_to_an_erased_client_cancels_and_scrubs_it_and_sends_nothing(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a queued welcome, and then the client's erasure accepted
    queued = queue_welcome()
    ErasedClientId.objects.create(client_id=queued.client_id)
    settled: list[str] = []

    # when it is delivered
    message = message_deliver(message_id=queued.id, on_settled=lambda m: settled.append(m.status))

    # then nothing was sent, and the row holds no personal data
    assert len(mailoutbox) == 0
    assert message.status == MessageStatus.CANCELLED
    stored = Message.objects.get()
    assert scrubbed(stored) == (MessageStatus.CANCELLED, ERASED_RECIPIENT, "", "", "", True)
    assert (stored.attempts, stored.sent_at) == (0, None)
    assert settled == [MessageStatus.CANCELLED]


def queue_welcome_claimed(**overrides: Any) -> services.Queued:
    return message_queue_claimed(**welcome_arguments(**overrides))


def test_a_message_queued_claimed_is_sent_by_its_caller_without_a_second_claim(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a welcome recorded claimed for sending, its first attempt
    queued = queue_welcome_claimed()
    assert queued.claimed is True
    stored = Message.objects.get()
    assert (stored.status, stored.attempts) == (MessageStatus.SENDING, 1)
    assert stored.sending_since is not None
    settled: list[str] = []

    # when its caller sends it after commit
    message = message_deliver(
        message_id=queued.message.id, claimed=True, on_settled=lambda m: settled.append(m.status)
    )

    # then it left once, and is recorded sent at its first attempt
    assert [email.message()["Message-ID"] for email in mailoutbox] == [stored.message_id_header]
    assert (message.status, message.attempts, message.sending_since) == (
        MessageStatus.SENT,
        1,
        None,
    )
    assert settled == [MessageStatus.SENT]


def test_a_message_queued_claimed_twice_is_claimed_once(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a welcome recorded claimed by a first copy of the step
    first = queue_welcome_claimed()

    # when a second copy records the same intent
    second = queue_welcome_claimed()

    # then it finds the message, without the claim: the first copy holds it
    assert (second.message.id, second.claimed) == (first.message.id, False)
    again = message_deliver(message_id=second.message.id)
    assert (again.status, mailoutbox) == (MessageStatus.SENDING, [])


def test_a_message_queued_claimed_for_an_erased_client_is_cancelled_unclaimed() -> None:
    client_id = uuid.uuid4()
    ErasedClientId.objects.create(client_id=client_id)

    queued = queue_welcome_claimed(client_id=client_id)

    assert queued.claimed is False
    assert scrubbed(Message.objects.get()) == (
        MessageStatus.CANCELLED,
        ERASED_RECIPIENT,
        "",
        "",
        "",
        True,
    )


@pytest.mark.parametrize("erasure", ["accepted", "reached correspondence"])
def test_an_erasure_after_the_claim_cancels_the_send(
    erasure: str, mailoutbox: list[mail.EmailMessage]
) -> None:
    # given a welcome recorded claimed, and then the client's erasure (its tombstone, or the
    # scrub of correspondence's messages)
    queued = queue_welcome_claimed()
    if erasure == "accepted":
        ErasedClientId.objects.create(client_id=queued.message.client_id)
    else:
        message_erase_client(client_id=queued.message.client_id)
    settled: list[str] = []

    # when its caller would send it
    message = message_deliver(
        message_id=queued.message.id, claimed=True, on_settled=lambda m: settled.append(m.status)
    )

    # then nothing left, and the row is cancelled without personal data
    assert mailoutbox == []
    assert scrubbed(message) == (MessageStatus.CANCELLED, ERASED_RECIPIENT, "", "", "", True)
    assert scrubbed(Message.objects.get()) == scrubbed(message)
    assert settled == [MessageStatus.CANCELLED]


@pytest.mark.parametrize(
    ("backend", "error", "recorded"),
    [
        (
            REFUSING_BACKEND,
            ConnectionRefusedError,
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (TIMING_OUT_BACKEND, TimeoutError, "TimeoutError: timed out"),
    ],
)
def test_message_deliver_records_a_failed_send_keeps_the_row_and_reraises(
    backend: str,
    error: type[Exception],
    recorded: str,
    mailoutbox: list[mail.EmailMessage],
    settings: Settings,
) -> None:
    # given a queued welcome, and an SMTP server that refuses or never answers
    queued = queue_welcome()
    settings.EMAIL_BACKEND = backend
    settled: list[str] = []

    # when it is delivered
    with pytest.raises(error):
        message_deliver(message_id=queued.id, on_settled=lambda m: settled.append(m.status))

    # then the message is failed with the error, kept for a retry with the same Message-ID
    stored = Message.objects.get()
    assert (stored.status, stored.error, stored.attempts, stored.sent_at) == (
        MessageStatus.FAILED,
        recorded,
        1,
        None,
    )
    assert (stored.id, stored.message_id_header) == (queued.id, queued.message_id_header)
    assert settled == []
    assert len(mailoutbox) == 0


def test_message_deliver_sends_a_failed_message_again_with_the_same_message_id(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given a welcome whose first send failed
    queued = queue_welcome()
    settings.EMAIL_BACKEND = REFUSING_BACKEND
    with pytest.raises(ConnectionRefusedError):
        message_deliver(message_id=queued.id)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    # when it is delivered again
    message = message_deliver(message_id=queued.id)

    # then the same message is sent once, with the same Message-ID, and the error is cleared
    assert (message.status, message.error, message.attempts) == (MessageStatus.SENT, "", 2)
    assert Message.objects.count() == 1
    assert [m.message()["Message-ID"] for m in mailoutbox] == [queued.message_id_header]


def test_message_deliver_leaves_a_message_another_worker_is_sending(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a welcome another worker claimed a moment ago
    queued = queue_welcome()
    Message.objects.filter(pk=queued.id).update(
        status=MessageStatus.SENDING, sending_since=timezone.now(), attempts=1
    )
    settled: list[str] = []

    # when a copy of the step delivers it
    message = message_deliver(message_id=queued.id, on_settled=lambda m: settled.append(m.status))

    # then it sends nothing and settles nothing: the other worker records the outcome
    assert (message.status, message.attempts) == (MessageStatus.SENDING, 1)
    assert (len(mailoutbox), settled) == (0, [])


def test_message_deliver_sends_again_what_a_worker_that_died_was_sending(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given a welcome claimed longer ago than any send can take (its worker died, perhaps after
    # the server had accepted it)
    queued = queue_welcome()
    claimed = timezone.now() - timedelta(seconds=6 * settings.EMAIL_TIMEOUT + 1)
    Message.objects.filter(pk=queued.id).update(
        status=MessageStatus.SENDING, sending_since=claimed, attempts=1
    )

    # when it is delivered
    message = message_deliver(message_id=queued.id)

    # then it is sent again, with the same Message-ID: the only repeat there can be
    assert (message.status, message.attempts) == (MessageStatus.SENT, 2)
    assert [m.message()["Message-ID"] for m in mailoutbox] == [queued.message_id_header]


def test_a_send_in_flight_when_the_client_is_erased_leaves_no_personal_data(
    mailoutbox: list[mail.EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a queued welcome, and the erasure accepted and carried out while the email is sent
    queued = queue_welcome()

    def erased_meanwhile(message: Message) -> None:
        ErasedClientId.objects.create(client_id=message.client_id)
        message_erase_client(client_id=message.client_id)
        mail.outbox.append(mail.EmailMessage(to=[message.recipient]))

    monkeypatch.setattr(services, "_send", erased_meanwhile)
    settled: list[str] = []

    # when the send ends
    message = message_deliver(message_id=queued.id, on_settled=lambda m: settled.append(m.status))

    # then it is recorded sent, without the client's address, names or text
    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert message.sent_at is not None
    assert scrubbed(Message.objects.get()) == (
        MessageStatus.SENT,
        ERASED_RECIPIENT,
        "",
        "",
        "",
        True,
    )
    assert settled == [MessageStatus.SENT]


# --- message_erase_client ------------------------------------------------------------------------


def test_message_erase_client_cancels_what_is_not_sent_and_blanks_every_message() -> None:
    # given a sent, a failed, a queued and a sending message of a client, and another client's
    client_id = uuid.uuid4()
    sent = MessageFactory.create(client_id=client_id)
    failed = MessageFactory.create(
        client_id=client_id,
        status=MessageStatus.FAILED,
        error="SMTPRecipientsRefused: ada@example.com",
    )
    queued = MessageFactory.create(client_id=client_id, status=MessageStatus.QUEUED)
    sending = MessageFactory.create(client_id=client_id, status=MessageStatus.SENDING)
    other = MessageFactory.create(recipient="grace@example.com")

    # when the client is erased, twice
    message_erase_client(client_id=client_id)
    message_erase_client(client_id=client_id)

    # then what was not sent is cancelled (a send in flight records its own outcome), and none
    # keeps personal data; the other client's is untouched
    assert {m.id: scrubbed(m) for m in Message.objects.filter(client_id=client_id)} == {
        sent.id: (MessageStatus.SENT, ERASED_RECIPIENT, "", "", "", True),
        failed.id: (MessageStatus.CANCELLED, ERASED_RECIPIENT, "", "", "", True),
        queued.id: (MessageStatus.CANCELLED, ERASED_RECIPIENT, "", "", "", True),
        sending.id: (MessageStatus.SENDING, ERASED_RECIPIENT, "", "", "", True),
    }
    other.refresh_from_db()
    assert (other.recipient, other.subject, other.erased) == (
        "grace@example.com",
        "Welcome to Ensemble, Ada",
        False,
    )


def test_template_render_falls_back_to_the_shipped_text_when_the_row_is_gone() -> None:
    # given staff deleted the welcome template
    Template.objects.filter(key="welcome").delete()

    # when it is rendered, then the text as shipped is used
    subject, _ = template_render(key="welcome", context={"first_name": "Ada"})
    assert subject == "Welcome to Ensemble, Ada"


def test_the_smtp_backend_waits_at_most_email_timeout(settings: Settings) -> None:
    settings.EMAIL_TIMEOUT = 2.5

    connection = mail.get_connection("django.core.mail.backends.smtp.EmailBackend")

    assert connection.timeout == 2.5
