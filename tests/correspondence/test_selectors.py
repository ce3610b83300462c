from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import NotFound
from correspondence.selectors import message_get, message_list
from tests.correspondence.factories import MessageFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


def test_message_list_is_the_clients_messages_newest_first() -> None:
    # given messages of two clients
    client_id = uuid.uuid4()
    old = MessageFactory.create(client_id=client_id, created_at=NOON)
    new = MessageFactory.create(client_id=client_id, created_at=NOON + timedelta(minutes=5))
    MessageFactory.create(created_at=NOON + timedelta(minutes=10))

    # then the client's list holds only its messages, newest first
    assert list(message_list(client_id=client_id)) == [new, old]
    assert list(message_list(client_id=uuid.uuid4())) == []


def test_message_get_returns_the_message() -> None:
    message = MessageFactory.create()
    assert message_get(message_id=message.id) == message


def test_message_get_of_an_unknown_message_is_not_found() -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        message_get(message_id=missing)
    assert raised.value.extra == {"message_id": str(missing)}
