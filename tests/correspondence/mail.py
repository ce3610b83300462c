"""Email backends for tests: an SMTP server that refuses, one that times out, and an outbox that
notes whether a database transaction was open when each email went out. None touches the
network."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection


class RefusingBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise ConnectionRefusedError(111, "Connection refused")


class TimingOutBackend(BaseEmailBackend):
    """A server that accepts the connection and then never answers (EMAIL_TIMEOUT expires)."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise TimeoutError("timed out")  # socket.timeout, as smtplib raises it


class TransactionWatchingBackend(LocmemBackend):
    """django.core.mail.outbox, and for each send whether a transaction was open at that moment."""

    in_transaction: list[bool] = []

    def send_messages(self, messages: Sequence[EmailMessage]) -> int:
        TransactionWatchingBackend.in_transaction.append(connection.in_atomic_block)
        return super().send_messages(messages)
