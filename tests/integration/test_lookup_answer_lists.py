"""Details lookups on a Redis result backend: each lookup names one answer list, the components
push their answers onto it and the asker pops them; nothing is left behind, a component that does
not answer or fails is unavailable, and erasure finds any answer that came too late."""

from __future__ import annotations

import json
import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone

from integration.core import erasure
from integration.orchestrator import lookups

pytestmark = pytest.mark.redis

ANSWERS: dict[str, dict[str, Any]] = {
    "crm": {"found": True, "profile": {"version": 1}},
    "sales": {"found": True},
}


@pytest.fixture
def client() -> Any:
    found = lookups.answers_client()
    assert found is not None, "a Redis result backend answers through lists"
    return found


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each lookup sent is answered at once, as its component's worker would, unless that
    component is told to stay silent ("silent") or to fail ("fails")."""
    behaviour: dict[str, str] = {}

    def answer(component: str, client_id: uuid.UUID) -> dict[str, Any]:
        if behaviour.get(component) == "fails":
            raise RuntimeError("the component's database is gone")
        return ANSWERS[component]

    def send_task(name: str, *, args: list[str], **options: Any) -> object:
        assert name == lookups.LOOKUP_REPLY_TASK
        assert options["ignore_result"] is True  # no Celery result to subscribe to
        component, client_id, reply_to = args
        if behaviour.get(component) != "silent":
            lookups.reply_in_time(component, uuid.UUID(client_id), reply_to, expires=None)
        return object()

    monkeypatch.setattr(lookups, "answer", answer)
    monkeypatch.setattr(lookups.app, "send_task", send_task)
    return behaviour


def lists_about(client: Any, client_id: uuid.UUID) -> list[bytes]:
    return list(client.scan_iter(match=f"{lookups.ANSWERS_PREFIX}{client_id}-*"))


def count_waits(monkeypatch: pytest.MonkeyPatch, client: Any) -> list[float]:
    waits: list[float] = []
    blpop = client.blpop

    def counted(keys: list[str], timeout: float) -> Any:
        waits.append(timeout)
        return blpop(keys, timeout=timeout)

    monkeypatch.setattr(client, "blpop", counted)
    return waits


def test_both_answers_are_read_and_their_list_is_gone(
    workers: dict[str, str], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = uuid.uuid4()
    waits = count_waits(monkeypatch, client)

    assert lookups.ask(["crm", "sales"], client_id) == (ANSWERS, [])
    assert len(waits) == 2
    assert lists_about(client, client_id) == []


def test_a_silent_component_is_unavailable_at_the_deadline_and_its_list_deleted(
    workers: dict[str, str], client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOOKUP_TIMEOUT = 0.3
    workers["sales"] = "silent"
    client_id = uuid.uuid4()
    waits = count_waits(monkeypatch, client)

    assert lookups.ask(["crm", "sales"], client_id) == ({"crm": ANSWERS["crm"]}, ["sales"])
    # every wait within the client's socket timeout; together they do not pass the deadline
    assert all(lookups.ANSWER_WAIT_MIN <= wait <= lookups.ANSWER_WAIT_SLICE for wait in waits)
    assert sum(waits[1:]) <= 0.3 + lookups.ANSWER_WAIT_MIN
    assert lists_about(client, client_id) == []


def test_a_failed_answer_makes_its_component_unavailable_without_waiting(
    workers: dict[str, str], client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOOKUP_TIMEOUT = 30
    workers["crm"] = "fails"
    client_id = uuid.uuid4()
    waits = count_waits(monkeypatch, client)

    assert lookups.ask(["crm", "sales"], client_id) == ({"sales": ANSWERS["sales"]}, ["crm"])
    assert len(waits) == 2  # the failure came back as a reply: no wait for the deadline
    assert lists_about(client, client_id) == []


def test_redis_failing_while_waiting_keeps_what_answered(
    workers: dict[str, str], client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blpop = client.blpop
    calls: list[int] = []

    def fails_second_time(keys: list[str], timeout: float) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise redis.exceptions.TimeoutError("Timeout reading from socket")
        return blpop(keys, timeout=timeout)

    monkeypatch.setattr(client, "blpop", fails_second_time)
    client_id = uuid.uuid4()

    assert lookups.ask(["crm", "sales"], client_id) == ({"crm": ANSWERS["crm"]}, ["sales"])
    # Redis is not asked again; the unread answer goes with its list within seconds
    (left,) = lists_about(client, client_id)
    assert 0 < client.ttl(left) <= math.ceil(settings.LOOKUP_TIMEOUT) + 1
    client.delete(left)


def test_a_broker_that_refuses_makes_every_component_unavailable(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuses(name: str, **options: Any) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(lookups.app, "send_task", refuses)
    monkeypatch.setattr(lookups.relay, "_broker_down_until", 0.0)
    waits = count_waits(monkeypatch, client)

    assert lookups.ask(["crm", "sales"], uuid.uuid4()) == ({}, ["crm", "sales"])
    assert waits == []  # nothing was asked, nothing is waited for
    assert lookups.relay.broker_suspected_down()


def test_an_answer_pushed_waits_on_its_list_for_a_moment_only(
    client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LOOKUP_TIMEOUT = 2.5
    monkeypatch.setattr(lookups, "answer", lambda component, client_id: ANSWERS[component])
    client_id = uuid.uuid4()
    key = f"{lookups.ANSWERS_PREFIX}{client_id}-{uuid.uuid4().hex}"

    assert lookups.reply_in_time("sales", client_id, key, expires=None) is True

    assert [json.loads(reply) for reply in client.lrange(key, 0, -1)] == [
        {"component": "sales", "answer": ANSWERS["sales"]}
    ]
    assert 0 < client.ttl(key) <= math.ceil(2.5) + 1
    client.delete(key)


def test_an_answer_ready_after_its_lookup_expired_is_not_pushed(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "answer", lambda component, client_id: ANSWERS[component])
    client_id = uuid.uuid4()
    key = f"{lookups.ANSWERS_PREFIX}{client_id}-{uuid.uuid4().hex}"
    expired = (timezone.now() - timedelta(seconds=1)).isoformat()

    assert lookups.reply_in_time("sales", client_id, key, expires=expired) is False
    assert lists_about(client, client_id) == []


def test_a_reply_goes_only_onto_a_list_of_its_own_lookup(client: Any) -> None:
    client_id, other = uuid.uuid4(), uuid.uuid4()

    for reply_to in ("celery-task-meta-x", f"{lookups.ANSWERS_PREFIX}{other}-abc"):
        with pytest.raises(ValueError, match="not a lookup's answer list"):
            lookups.reply_in_time("sales", client_id, reply_to, expires=None)
    assert lists_about(client, other) == []


def test_erasure_removes_the_lists_about_the_client_only(client: Any) -> None:
    erased, kept = uuid.uuid4(), uuid.uuid4()
    for client_id in (erased, erased, kept):
        client.rpush(f"{lookups.ANSWERS_PREFIX}{client_id}-{uuid.uuid4().hex}", "{}")

    assert lookups.forget_client_answers(erased) == 2

    assert lists_about(client, erased) == []
    assert len(lists_about(client, kept)) == 1
    client.delete(*lists_about(client, kept))


@pytest.mark.django_db
def test_an_erasure_removes_stored_answers_only_once_it_commits(
    client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The scrub runs inside the erasure step's transaction and lock: Redis is not asked there."""
    erased, kept = uuid.uuid4(), uuid.uuid4()
    result = f"{lookups.RESULT_KEY_PREFIX}{lookups.TASK_ID_PREFIX}{erased}-{uuid.uuid4().hex}"
    client.set(result, "{}")
    for client_id in (erased, kept):
        client.rpush(f"{lookups.ANSWERS_PREFIX}{client_id}-{uuid.uuid4().hex}", "{}")

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        erasure.scrub_integration(client_id=erased)
        assert len(lists_about(client, erased)) == 1
        assert client.exists(result) == 1
    for callback in after_commit:
        callback()

    assert lists_about(client, erased) == []
    assert client.exists(result) == 0
    assert len(lists_about(client, kept)) == 1
    client.delete(*lists_about(client, kept))
