"""Details lookups answered as Celery results (RabbitMQ's rpc://, files; on Redis answers come
through lists, test_lookup_answer_lists.py) leave nothing in the asking process's memory: Celery's
result backends buffer answers that arrive with nobody waiting for them (`_pending_messages`), and
each lookup removes its own and those of askers that have left; erasure removes a buffered answer
about its client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery import states

from config.celery import app
from integration.orchestrator import lookups

ANSWER = {"found": True, "purchases": []}


@pytest.fixture
def backend() -> Any:
    backend = app.backend
    lookups.discard_buffered(backend, lookups.buffered_lookups(backend))
    yield backend
    lookups.discard_buffered(backend, lookups.buffered_lookups(backend))


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch, backend: Any) -> list[str]:
    """The lookups sent, in order; each is subscribed to as Celery's send_task would."""
    sent: list[str] = []
    pushes_answers = type(backend).__name__ == "RedisBackend"

    def send_task(name: str, *, task_id: str, **options: Any) -> Any:
        sent.append(task_id)
        if pushes_answers:
            backend.on_task_call(None, task_id)
        return app.AsyncResult(task_id)

    monkeypatch.setattr(lookups.app, "send_task", send_task)
    monkeypatch.setattr(lookups, "answers_client", lambda: None)  # answers as Celery results
    return sent


def arrives_with_nobody_waiting(backend: Any, task_id: str) -> None:
    """What Celery's result consumer does with an answer no waiter claims (on_state_change)."""
    meta = {"task_id": task_id, "status": states.SUCCESS, "result": ANSWER}
    backend._pending_messages.put(task_id, meta)


def test_answers_read_by_lookups_leave_no_copy_behind(
    monkeypatch: pytest.MonkeyPatch, settings: Any, backend: Any, asked: list[str]
) -> None:
    if type(backend).__name__ == "RPCBackend":
        pytest.skip("an RPC answer needs a real worker's reply_to")
    # given components that answer while the asker waits (stored, and pushed where the backend
    # pushes: Redis publishes each answer to its subscribers)
    settings.LOOKUP_TIMEOUT = 5
    wait = lookups._wait_for_results

    def answered_while_waiting(seconds: float) -> None:
        for task_id in asked[-2:]:
            backend.store_result(task_id, ANSWER, states.SUCCESS)
        wait(seconds)

    monkeypatch.setattr(lookups, "_wait_for_results", answered_while_waiting)

    # when many lookups are made
    results = [lookups.ask(["crm", "sales"], uuid.uuid4()) for _ in range(20)]

    # then each got both answers, and none stays in memory
    assert results == [({"crm": ANSWER, "sales": ANSWER}, [])] * 20
    assert lookups.buffered_lookups(backend) == set()


def test_answers_that_arrive_after_their_asker_gave_up_are_discarded(
    monkeypatch: pytest.MonkeyPatch, settings: Any, backend: Any, asked: list[str]
) -> None:
    # given components that answer only after their askers have given up: each lookup's wait
    # brings in the answers to every lookup before it
    settings.LOOKUP_TIMEOUT = 0.01

    def late_answers_arrive(seconds: float) -> None:
        for task_id in asked[:-2]:
            arrives_with_nobody_waiting(backend, task_id)

    monkeypatch.setattr(lookups, "_wait_for_results", late_answers_arrive)

    # when many lookups time out
    results = [lookups.ask(["crm", "sales"], uuid.uuid4()) for _ in range(50)]

    # then every one named both components unavailable, and no answer is kept
    assert results == [({}, ["crm", "sales"])] * 50
    assert len(asked) == 100
    assert lookups.buffered_lookups(backend) == set()


def test_an_answer_buffered_for_a_lookup_in_flight_is_left_to_its_asker(
    backend: Any,
) -> None:
    # given another thread's lookup in flight, whose answer is buffered
    waiting = lookups._task_id(uuid.uuid4())
    lookups._in_flight.add(waiting)
    try:
        arrives_with_nobody_waiting(backend, waiting)
        stray = lookups._task_id(uuid.uuid4())
        arrives_with_nobody_waiting(backend, stray)

        # when a lookup ends here
        lookups._clean_up([])

        # then the stray answer is gone, and the awaited one is still there
        assert lookups.buffered_lookups(backend) == {waiting}
    finally:
        lookups._in_flight.discard(waiting)


@pytest.mark.django_db
def test_erasure_removes_a_buffered_answer_about_the_client(backend: Any) -> None:
    # given answers about two clients buffered in this process
    erased, kept = uuid.uuid4(), uuid.uuid4()
    erased_answer, kept_answer = lookups._task_id(erased), lookups._task_id(kept)
    arrives_with_nobody_waiting(backend, erased_answer)
    arrives_with_nobody_waiting(backend, kept_answer)

    # when the first client is erased
    removed = lookups.forget_client_answers(erased)

    # then only their answer is gone
    assert removed == 1
    assert lookups.buffered_lookups(backend) == {kept_answer}
