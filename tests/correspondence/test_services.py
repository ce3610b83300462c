from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core import mail
from pytest_django.fixtures import Settings

from common.errors import NotFound, ValidationFailed
from correspondence.models import ERASED_RECIPIENT, Message, MessageStatus, Template
from correspondence.services import message_erase_client, message_send, template_render
from tests.correspondence.factories import MessageFactory

pytestmark = pytest.mark.django_db

REFUSING_BACKEND = "tests.correspondence.mail.RefusingBackend"
WELCOME_BODY = (
    "Hello Ada,\n"
    "\n"
    "Thank you for registering with Ensemble. Your account is ready, and from now on\n"
    "we will keep you informed about your orders.\n"
    "\n"
    "The Ensemble team\n"
)


def send_welcome(**overrides: Any) -> Message:
    arguments: dict[str, Any] = {
        "client_id": uuid.uuid4(),
        "recipient": "ada@example.com",
        "template_key": "welcome",
        "context": {"first_name": "Ada"},
        "reference": "process-1",
    }
    arguments.update(overrides)
    return message_send(**arguments)


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


# --- message_send --------------------------------------------------------------------------------


def test_message_send_sends_the_email_and_records_it(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given a client
    client_id = uuid.uuid4()

    # when the welcome email is sent
    message = send_welcome(client_id=client_id, recipient=" Ada@EXAMPLE.com ")

    # then exactly one email left, as rendered, to the normalised address
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert (email.subject, email.body) == ("Welcome to Ensemble, Ada", WELCOME_BODY)
    assert (email.to, email.from_email) == (["Ada@example.com"], settings.DEFAULT_FROM_EMAIL)
    # and one sent message records it
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
    assert (stored.status, stored.error) == (MessageStatus.SENT, "")
    assert stored.sent_at is not None


def test_message_send_is_idempotent_on_template_and_reference(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    # given a sent welcome
    first = send_welcome(reference="process-1")

    # when it is sent again with the same reference
    second = send_welcome(reference="process-1", context={"first_name": "Other"})

    # then the first message is returned and no second email leaves
    assert second.id == first.id
    assert second.subject == "Welcome to Ensemble, Ada"
    assert second.sent_at == first.sent_at
    assert Message.objects.count() == 1
    assert len(mailoutbox) == 1


def test_message_send_references_are_per_template(mailoutbox: list[mail.EmailMessage]) -> None:
    # when a welcome and a receipt share a reference
    send_welcome(reference="same")
    send_welcome(
        template_key="receipt",
        context={"order_ref": "ORD-1", "total": "1.00", "currency": "EUR"},
        reference="same",
    )

    # then both are sent
    assert Message.objects.count() == 2
    assert len(mailoutbox) == 2


def test_message_send_marks_a_refused_delivery_failed_and_reraises(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given an SMTP server that refuses connections
    settings.EMAIL_BACKEND = REFUSING_BACKEND

    # when the welcome is sent
    with pytest.raises(ConnectionRefusedError):
        send_welcome()

    # then the message is kept as failed with the error, and nothing was sent
    stored = Message.objects.get()
    assert stored.status == MessageStatus.FAILED
    assert stored.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert stored.sent_at is None
    assert len(mailoutbox) == 0


def test_message_send_retries_a_failed_message(
    mailoutbox: list[mail.EmailMessage], settings: Settings
) -> None:
    # given a failed welcome
    settings.EMAIL_BACKEND = REFUSING_BACKEND
    with pytest.raises(ConnectionRefusedError):
        send_welcome(recipient="typo@example.con")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    # when it is sent again, to a corrected address
    message = send_welcome(recipient="ada@example.com")

    # then the same message is sent once, to the new address, and the error is cleared
    stored = Message.objects.get()
    assert stored.id == message.id
    assert (stored.status, stored.error, stored.recipient) == (
        MessageStatus.SENT,
        "",
        "ada@example.com",
    )
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ada@example.com"]


def test_message_send_validates_the_recipient_and_reference(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        send_welcome(recipient="nope", reference=" ")
    assert raised.value.errors == {
        "recipient": ["Enter a valid email address."],
        "reference": ["This field cannot be blank."],
    }
    assert Message.objects.count() == 0
    assert len(mailoutbox) == 0


def test_message_send_with_an_unknown_template_is_not_found(
    mailoutbox: list[mail.EmailMessage],
) -> None:
    with pytest.raises(NotFound):
        send_welcome(template_key="farewell")
    assert Message.objects.count() == 0
    assert len(mailoutbox) == 0


# --- message_erase_client ------------------------------------------------------------------------


def test_message_erase_client_blanks_the_clients_messages() -> None:
    # given two messages of a client, one failed, and another client's message
    client_id = uuid.uuid4()
    MessageFactory.create(client_id=client_id)
    MessageFactory.create(
        client_id=client_id,
        status=MessageStatus.FAILED,
        error="SMTPRecipientsRefused: ada@example.com",
    )
    other = MessageFactory.create(recipient="grace@example.com")

    # when the client is erased, twice
    message_erase_client(client_id=client_id)
    message_erase_client(client_id=client_id)

    # then the client's messages keep no personal data, the other is untouched
    erased = Message.objects.filter(client_id=client_id)
    assert sorted(erased.values_list("recipient", "subject", "body", "error")) == [
        (ERASED_RECIPIENT, "", "", ""),
        (ERASED_RECIPIENT, "", "", ""),
    ]
    other.refresh_from_db()
    assert (other.recipient, other.subject) == ("grace@example.com", "Welcome to Ensemble, Ada")


def test_template_render_falls_back_to_the_shipped_text_when_the_row_is_gone() -> None:
    # given staff deleted the welcome template
    Template.objects.filter(key="welcome").delete()

    # when it is rendered, then the text as shipped is used
    subject, _ = template_render(key="welcome", context={"first_name": "Ada"})
    assert subject == "Welcome to Ensemble, Ada"
