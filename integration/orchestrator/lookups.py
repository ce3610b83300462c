"""Request/reply lookups for client details in orchestration.

The orchestrator asks crm and sales at once, each on its lookup queue, and waits for both under one
deadline (LOOKUP_TIMEOUT). A component that does not answer in time is named unavailable. Answers
are forgotten once read; where they are kept carries the client id, so that erasure can find any
answer that arrived after its asker gave up.

Answers come back by one of two ways, chosen by the result backend:

- Redis: each lookup names a list (`lookup-answers-<client>-<random>`); the components push their
  answers onto it and the asker pops them as they come (BLPOP, in slices of its deadline). That
  is one round trip per answer; the list is gone once both are read, and one that is not read
  expires within seconds. Celery's result machinery (a subscription per answer, reads of the
  store, the answer's deletion) cost more of a request than everything else it does.
- Otherwise (RabbitMQ's `rpc://`, files): each answer is the lookup task's Celery result. Nothing
  of a lookup stays in the asking process: Celery's result backends keep answers that arrive with
  nobody waiting for them in memory (the Redis and RPC backends' pending buffers, up to 8,192 of
  them), so each lookup removes its own answers and pending state when it ends, and any lookup
  answer buffered for an asker that has already left.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from celery.backends.redis import RedisBackend
from celery.exceptions import Ignore
from celery.utils.time import maybe_iso8601, maybe_make_aware
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.celery import app, lookup_queue
from integration.core import relay
from integration.core.details import purchases_of

logger = logging.getLogger(__name__)

LOOKUP_TASK = "integration.lookup"  # its answer is its Celery result
LOOKUP_REPLY_TASK = "integration.lookup_reply"  # its answer is pushed onto the asker's list
RESULT_KEY_PREFIX = "celery-task-meta-"
ANSWERS_PREFIX = "lookup-answers-"
# A BLPOP waits at most this long at a time, well inside the Redis client's socket timeout.
ANSWER_WAIT_SLICE = 0.2
ANSWER_WAIT_MIN = 0.01  # Redis reads a blocking timeout in milliseconds; zero would mean forever
POLL_SECONDS = 0.005
RECHECK_POLLS = 20  # a pushed answer is also looked for in the store every ~0.1 s
TASK_ID_PREFIX = "lookup-"

# The lookups this process is waiting for, across its threads: their answers are not strays.
_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def _task_id(client_id: UUID) -> str:
    return f"{TASK_ID_PREFIX}{client_id}-{uuid.uuid4().hex}"


def ask(components: list[str], client_id: UUID) -> tuple[dict[str, Any], list[str]]:
    """Ask each component about a client at once; (answers by component, unavailable ones)."""
    deadline = time.monotonic() + settings.LOOKUP_TIMEOUT
    client = answers_client()
    if client is not None:
        answers = _ask_by_list(client, components, client_id, deadline)
    else:
        answers = _ask_by_results(components, client_id, deadline)
    return answers, sorted(component for component in components if component not in answers)


def answers_client() -> Any | None:
    """The Redis client answers are pushed through, when the result backend is Redis."""
    backend = app.backend
    return backend.client if isinstance(backend, RedisBackend) else None


def _send(task: str, component: str, args: list[str], **options: Any) -> Any | None:
    """Publish one lookup on the component's lookup queue; None when the broker is suspected
    down or refuses it (the component is then unavailable)."""
    if relay.broker_suspected_down():
        return None
    try:
        return relay.publish(
            task,
            args,
            queue=lookup_queue(component),
            expires=settings.LOOKUP_TIMEOUT + 5,  # an answer nobody waits for: not computed
            **options,
        )
    except Exception as error:  # noqa: BLE001 - a broker failure makes the component unavailable
        logger.warning("lookup to %s not sent: %s", component, error)
        relay.trip_breaker()
        return None


def _ask_by_list(
    client: Any, components: list[str], client_id: UUID, deadline: float
) -> dict[str, Any]:
    """Send the lookups naming one answer list, and pop their answers until all are in or the
    deadline passes; a list that may still get answers is deleted (or, Redis failing, expires)."""
    key = f"{ANSWERS_PREFIX}{client_id}-{uuid.uuid4().hex}"
    asked = [
        component
        for component in components
        # no Celery result: the sender would subscribe to one that never comes
        if _send(LOOKUP_REPLY_TASK, component, [component, str(client_id), key], ignore_result=True)
    ]
    answers: dict[str, Any] = {}
    replied = 0
    try:
        while replied < len(asked):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            popped = client.blpop(
                [key], timeout=max(ANSWER_WAIT_MIN, min(remaining, ANSWER_WAIT_SLICE))
            )
            if popped is None:
                continue
            replied += 1
            reply = json.loads(popped[1])
            if "answer" in reply:
                answers[reply["component"]] = reply["answer"]
            else:
                logger.warning("lookup to %s failed: %s", reply["component"], reply.get("error"))
    except Exception as error:  # noqa: BLE001 - Redis failed or timed out: the rest did not answer
        logger.warning("lookup answers unreadable: %s", error)
        return answers  # not asked again: the list, if an answer reaches it, expires on its own
    if replied < len(asked):  # late answers land on a list nobody reads: it goes now
        with contextlib.suppress(Exception):
            client.delete(key)
    return answers


def _ask_by_results(components: list[str], client_id: UUID, deadline: float) -> dict[str, Any]:
    """Send the lookups, each answering as its task's Celery result, and collect those."""
    pending: dict[str, Any] = {}
    for component in components:
        task_id = _task_id(client_id)
        with _in_flight_lock:
            _in_flight.add(task_id)
        result = _send(LOOKUP_TASK, component, [component, str(client_id)], task_id=task_id)
        if result is not None:
            pending[component] = result
        else:
            with _in_flight_lock:
                _in_flight.discard(task_id)
    try:
        return _collect(pending, deadline)
    finally:
        _clean_up([result.id for result in pending.values()])


def _collect(pending: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Wait for the answers until all are in or the deadline passes. (Celery's own result.get()
    checks its timeout only between one-second waits: too coarse for this deadline.)"""
    answers: dict[str, Any] = {}
    waiting = dict(pending)
    pushed = _pushes_answers()
    try:
        if pushed:  # its answers now settle the results themselves (forget() undoes this)
            backend: Any = app.backend  # an AsyncBackendMixin: it has a result consumer
            for result in pending.values():
                backend.add_pending_result(result, start_drainer=False)
        for poll in itertools.count():
            if not waiting:
                break
            for component, result in list(waiting.items()):
                if _answered(result, poll, pushed):
                    del waiting[component]
                    if result.successful():
                        answers[component] = result.result
                    else:
                        logger.warning("lookup to %s failed: %s", component, result.result)
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            _wait_for_results(min(POLL_SECONDS, remaining))
    except Exception as error:  # noqa: BLE001 - whichever backend: the rest did not answer
        # The result backend failed or timed out (each call bounded by its socket timeout):
        # the components that have not answered yet are unavailable, and their stored
        # answers are left to expire rather than waited on again.
        logger.warning("lookup answers unreadable: %s", error)
        return answers
    for result in pending.values():
        with contextlib.suppress(Exception):  # no answer (files) or a backend gone meanwhile
            result.forget()  # its pending state, its subscription and its stored answer
    return answers


def _answered(result: Any, poll: int, pushed: bool) -> bool:
    """Whether a lookup's answer is in. A backend that pushes answers (Redis pub/sub, RabbitMQ's
    reply queue) fulfils the result's promise as one arrives, while asking its store costs a round
    trip per pending answer: the store is asked on the first poll (an answer stored before the
    subscription) and then every RECHECK_POLLS polls only, in case a push was lost."""
    if pushed and poll % RECHECK_POLLS and not result.on_ready.ready:
        return False
    return bool(result.ready())


def _pushes_answers() -> bool:
    return getattr(app.backend, "result_consumer", None) is not None


def _clean_up(task_ids: list[str]) -> None:
    """A lookup ended: its answers, and lookup answers nobody waits for any longer, leave this
    process's memory (an answer that arrives after its asker gave up is discarded here)."""
    with _in_flight_lock:
        _in_flight.difference_update(task_ids)
        strays = [task_id for task_id in buffered_lookups(app.backend) if task_id not in _in_flight]
    discard_buffered(app.backend, [*task_ids, *strays])


def buffered_lookups(backend: Any) -> set[str]:
    """The lookup task ids a result backend holds anything about in this process's memory."""
    found: set[str] = set()
    for mapping in _memory_of(backend):
        found.update(key for key in tuple(mapping) if str(key).startswith(TASK_ID_PREFIX))
    return found


def discard_buffered(backend: Any, task_ids: Iterable[str]) -> int:
    """Remove what a result backend keeps in memory about these tasks; how many it held."""
    removed = 0
    memory = _memory_of(backend)
    for task_id in task_ids:
        held = False
        for mapping in memory:
            held = mapping.pop(task_id, None) is not None or held
        removed += held
    pending_messages = getattr(backend, "_pending_messages", None)
    if pending_messages is not None:  # BufferMap counts its messages to evict the oldest
        pending_messages.total = sum(len(buffer) for buffer in tuple(pending_messages.values()))
    return removed


def _memory_of(backend: Any) -> list[Any]:
    """Celery's in-memory structures about tasks: answers that came with nobody waiting for
    them (`_pending_messages`; the RPC backend's `_out_of_band`), waiters and cached states."""
    names = ("_pending_messages", "_out_of_band", "_cache")
    memory = [getattr(backend, name) for name in names if hasattr(backend, name)]
    memory += list(getattr(backend, "_pending_results", ()))
    return [mapping for mapping in memory if hasattr(mapping, "pop")]


def _wait_for_results(seconds: float) -> None:
    """Let answers in: a backend that pushes them (Redis pub/sub, RabbitMQ's reply queue) is
    drained for at most `seconds`; one that is polled (files) is simply waited on."""
    consumer = getattr(app.backend, "result_consumer", None)
    if consumer is None:  # _pushes_answers() is false
        time.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):  # nothing arrived in time (RabbitMQ)
        consumer.drain_events(timeout=seconds)


def client_scrubbed(sender: Any, client_id: UUID, **kwargs: Any) -> None:
    """Receiver of the core's `client_scrubbed`: stored answers about the client go once the
    erasure commits. The scrub runs in the erasure step's transaction, which holds the step's
    lock; the result backend is not asked while it is held. Should that fail, the answers expire
    on their own (lists a second after LOOKUP_TIMEOUT, results after CELERY_RESULT_EXPIRES)."""
    transaction.on_commit(lambda: _forget_after_commit(client_id))


def _forget_after_commit(client_id: UUID) -> None:
    try:
        forget_client_answers(client_id)
    except Exception as error:  # noqa: BLE001 - they expire anyway; the erasure stands
        logger.warning("lookup answers about an erased client not removed: %s", error)


def forget_client_answers(client_id: UUID) -> int:
    """Erase every stored lookup answer about a client (answers that came after the asker left),
    and any copy of one this process still holds in memory."""
    pattern = f"{RESULT_KEY_PREFIX}{TASK_ID_PREFIX}{client_id}-"
    backend = app.backend
    own = f"{TASK_ID_PREFIX}{client_id}-"
    removed = discard_buffered(
        backend, [task_id for task_id in buffered_lookups(backend) if task_id.startswith(own)]
    )
    client = answers_client()
    if client is not None:
        # one pass over the keys finds both kinds: stored results and answer lists
        prefixes = (pattern.encode(), f"{ANSWERS_PREFIX}{client_id}-".encode())
        for key in client.scan_iter(match=f"*{client_id}-*", count=500):
            name = key if isinstance(key, bytes) else key.encode()
            if name.startswith(prefixes):
                removed += int(client.delete(key))
        return removed
    path = getattr(backend, "path", None)
    if path:  # the filesystem result backend
        from pathlib import Path

        folder = Path(path.decode() if isinstance(path, bytes) else path)
        for answer in folder.glob(f"{pattern}*"):
            answer.unlink(missing_ok=True)
            removed += 1
    return removed


# --- the answering side (runs in the component's worker) --------------------------------------


def answer_in_time(component: str, client_id: UUID, *, expires: Any) -> dict[str, Any]:
    """The answer, unless it is ready only after the lookup expired: its asker has left, and an
    answer nobody reads is not stored (Celery's Ignore stores no result)."""
    found = answer(component, client_id)
    if _expired(expires):
        raise Ignore()
    return found


def reply_in_time(component: str, client_id: UUID, reply_to: str, *, expires: Any) -> bool:
    """Push the answer (or that there is none: the error's kind) onto the asker's list, unless it
    is ready only after the lookup expired. The list expires soon after the asker's deadline."""
    if not reply_to.startswith(f"{ANSWERS_PREFIX}{client_id}-"):
        raise ValueError(f"not a lookup's answer list: {reply_to!r}")
    try:
        reply: dict[str, Any] = {"component": component, "answer": answer(component, client_id)}
    except Exception as error:
        logger.exception("lookup of %s by %s failed", client_id, component)
        reply = {"component": component, "error": type(error).__name__}
    if _expired(expires):
        return False
    client = answers_client()
    if client is None:
        raise RuntimeError("answer lists need a Redis result backend")
    with client.pipeline(transaction=True) as pipeline:
        pipeline.rpush(reply_to, json.dumps(reply))
        pipeline.expire(reply_to, math.ceil(settings.LOOKUP_TIMEOUT) + 1)
        pipeline.execute()
    return True


def _expired(expires: Any) -> bool:
    expiry = maybe_iso8601(expires) if expires is not None else None
    return expiry is not None and timezone.now() > maybe_make_aware(expiry)


def answer(component: str, client_id: UUID) -> dict[str, Any]:
    if component == "crm":
        return _crm_answer(client_id)
    if component == "sales":
        return _sales_answer(client_id)
    raise ValueError(f"{component} answers no lookups")


def _crm_answer(client_id: UUID) -> dict[str, Any]:
    from crm import selectors as crm_selectors

    client = crm_selectors.client_card(client_id=client_id)
    if client is None:
        return {"found": False}
    communications = crm_selectors.communication_entries(client_id=client_id)
    return {
        "found": True,
        "profile": {
            "id": str(client.id),
            "version": client.version,
            "email": client.email,
            "first_name": client.first_name,
            "last_name": client.last_name,
            "phone": client.phone,
            "company": client.company,
            "marketing_consent": client.marketing_consent,
            "registered_at": client.registered_at.isoformat(),
        },
        "communications": [
            {
                "id": str(item.id),
                "channel": item.channel,
                "subject": item.subject,
                "occurred_at": item.occurred_at.isoformat(),
            }
            for item in communications
        ],
    }


def _sales_answer(client_id: UUID) -> dict[str, Any]:
    return {"found": True, "purchases": purchases_of(client_id)}
