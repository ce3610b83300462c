"""The orchestration engine: start a process, carry out a step, advance, retry, fail, resume.

Everything a step does happens in one transaction in the worker of the step's component: the
processed-message record, the component's service call, the step marked done, its trace entries,
the next step's command row. The command is published after commit (integration/relay.py); the
sweeper resends what is unanswered after T·2^(n-1) s and fails the process when the attempts are
spent. Copies of a command (timeouts, redeliveries, the sweeper) all carry the step's id, so the
effect happens once.
"""

from __future__ import annotations

import functools
import logging
import random
import traceback
from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common import correlation, plain_sql
from common.errors import ApplicationError, NotFound
from integration.core import backlog, components, lifecycle, relay
from integration.core.processed import processed_already, processed_claim
from integration.core.runs import run_count, run_uncount
from integration.core.trace import (
    client_version_set,
    current_step_set,
    lock_process,
    trace_batch,
    trace_record,
)
from integration.models import (
    ErasedClientId,
    Process,
    ProcessKind,
    ProcessStatus,
    Step,
    StepStatus,
    TraceKind,
)
from integration.orchestrator.context import StepContext
from integration.orchestrator.definitions import AfterCommit, definition_for

logger = logging.getLogger(__name__)

Results = MutableMapping[str, dict[str, Any]]

RUN_STEP_TASK = "integration.run_step"
ACTIVE = (StepStatus.PENDING, StepStatus.SENT, StepStatus.WAITING)
ORCHESTRATOR = "integration"


def answer_timeout(attempt: int) -> float:
    """How long attempt n waits for an answer: T·2^(n-1), ±20 % jitter, at most 600 s."""
    base = settings.ORCHESTRATOR_STEP_TIMEOUT * 2 ** (attempt - 1)
    return float(min(600.0, base * random.uniform(0.8, 1.2)))


def error_backoff(attempt: int) -> float:
    """How long to wait before retrying a step that raised: short at first, then as a timeout."""
    base = min(1.0, settings.ORCHESTRATOR_STEP_TIMEOUT) * 2 ** (attempt - 1)
    return float(min(600.0, base * random.uniform(0.8, 1.2)))


# --- starting and advancing ---------------------------------------------------------------------


def process_begin(process: Process) -> None:
    """Send the first step of a process just started (inside the creating transaction)."""
    _send_next(process, after=0, results={})


def _context(process: Process, results: Results) -> StepContext:
    return StepContext(
        process_id=process.id, client_id=process.client_id, input=process.input, results=results
    )


class StepResults(MutableMapping[str, dict[str, Any]]):
    """What the process's steps done so far returned, by step name. Read from the database the
    first time a result is asked for that this run has not set itself: most steps ask for none,
    and the step that completes is known without asking."""

    def __init__(self, process: Process) -> None:
        self._process_id = process.pk
        self._known: dict[str, dict[str, Any]] = {}
        self._read = False

    def _read_stored(self) -> dict[str, dict[str, Any]]:
        if not self._read:
            self._read = True
            key = plain_sql.bound(Step, "process", self._process_id)
            rows = plain_sql.fetch_all(_results_sql(), [key, StepStatus.DONE])
            result = Step._meta.get_field("result")
            stored = {name: plain_sql.orm_value(result, value) for name, value in rows}
            self._known = {**stored, **self._known}
        return self._known

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name in self._known:
            return self._known[name]
        return self._read_stored()[name]

    def __setitem__(self, name: str, value: dict[str, Any]) -> None:
        self._known[name] = value

    def __delitem__(self, name: str) -> None:
        del self._read_stored()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read_stored())

    def __len__(self) -> int:
        return len(self._read_stored())


def _send_next(process: Process, *, after: int, results: Results) -> None:
    following = definition_for(process.kind).next_step(after, _context(process, results))
    if following is None:
        lifecycle.process_finish(process=process, status=ProcessStatus.COMPLETED)
        return
    position, definition = following
    held = components.component_paused(definition.component)
    step = Step(
        process=process,
        position=position,
        name=definition.name,
        component=definition.component,
        status=StepStatus.HELD if held else StepStatus.SENT,
        attempts=0 if held else 1,
        sent_at=None if held else timezone.now(),
        next_attempt_at=None if held else timezone.now() + timedelta(seconds=answer_timeout(1)),
    )
    plain_sql.insert_all([step])
    if process.current_step != step.name:
        process.current_step = step.name
        current_step_set(process_id=process.id, name=step.name)
    if held:
        _trace_held(step)
    else:
        _announce_and_publish(step)


def _hold(step: Step) -> None:
    """The step's component is paused: the command waits in the database, spending nothing."""
    step.status = StepStatus.HELD
    step.next_attempt_at = None
    step.save(update_fields=["status", "next_attempt_at"])
    _trace_held(step)


def _trace_held(step: Step) -> None:
    trace_record(
        process_id=step.process_id,
        component=ORCHESTRATOR,
        name=step.name,
        kind=TraceKind.COMMAND,
        status="held",
        attempt=max(step.attempts, 1),
        detail={"to": step.component, "reason": f"{step.component} paused"},
    )


def release_held(*, component: str) -> int:
    """A paused component resumes: its held commands go out in the order they were made."""
    held = list(
        Step.objects.filter(component=component, status=StepStatus.HELD).order_by("created_at")
    )
    now = timezone.now()
    for step in held:
        with correlation.bound(step.process_id):
            step.attempts = max(step.attempts, 1)
            step.status = StepStatus.SENT
            step.sent_at = now
            step.next_attempt_at = now + timedelta(seconds=answer_timeout(step.attempts))
            step.save(update_fields=["attempts", "status", "sent_at", "next_attempt_at"])
            _announce_and_publish(step)
    return len(held)


def _announce_and_publish(step: Step) -> None:
    trace_record(
        process_id=step.process_id,
        component=ORCHESTRATOR,
        name=step.name,
        kind=TraceKind.COMMAND,
        status="sent",
        attempt=step.attempts,
        detail={"to": step.component, "command_id": str(step.id)},
    )
    relay.send_after_commit(_outgoing(step))


def _outgoing(step: Step) -> relay.Outgoing:
    return relay.Outgoing(
        task=RUN_STEP_TASK,
        args=[str(step.id)],
        queue=step.component,
        correlation_id=str(step.process_id),
        on_failure=lambda: _mark_unpublished(step.id),
    )


def _mark_unpublished(step_id: UUID) -> None:
    """The broker refused the command: the sweeper sends it within a second of its return."""
    Step.objects.filter(pk=step_id, status=StepStatus.SENT).update(
        status=StepStatus.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=1)
    )


# --- carrying out a step (in the component's worker) ------------------------------------------


def step_execute(*, step_id: UUID) -> str:
    """Carry out one copy of a step's command. Returns what happened, for the worker's log."""
    process_id = _count_run(step_id)
    if process_id is None:
        row = Step.objects.filter(pk=step_id).values("process_id", "status").first()
        if row is None:
            return "unknown step"
        process_id = row["process_id"]
        if row["status"] in ACTIVE:  # open, and its runs all ended with their worker
            with correlation.bound(process_id):
                return _fail_worker_lost(step_id, process_id)
    with correlation.bound(process_id):
        effect: AfterCommit | None = None
        try:
            with transaction.atomic():
                outcome = _execute_locked(step_id, process_id)
            if isinstance(outcome, tuple):
                effect, intent = outcome
                outcome = _run_after_commit(step_id, process_id, effect, intent)
        except Exception as error:  # noqa: BLE001 - recorded on the step, retried or failed
            logger.warning("step %s raised %s", step_id, type(error).__name__)
            _record_error(step_id, process_id, error, name=effect.name if effect else None)
            return f"error: {type(error).__name__}"
        if outcome != "done":
            # This copy ended without running the step (in flight elsewhere, held, already
            # processed): its run was not one that its worker died in.
            run_uncount(Step, pk=step_id)
        return outcome


def _count_run(step_id: UUID) -> UUID | None:
    """Count this run (see integration/core/runs.py); the step's process, or None when the step
    is not open or its runs are spent."""
    run = run_count(Step, pk=step_id, open_statuses=ACTIVE)
    return run.process_id if run else None


def _fail_worker_lost(step_id: UUID, process_id: UUID) -> str:
    """Every recent run of this step ended with its worker process: it is not run again. The
    process fails and waits for a person, as when a step's attempts are spent."""
    with transaction.atomic():
        process = lock_process(process_id)
        step = Step.objects.get(pk=step_id)
        if step.status not in ACTIVE:
            return f"ignored: step is {step.status}"
        step.status = StepStatus.FAILED
        step.next_attempt_at = None
        step.last_error = f"worker lost: {step.runs} runs ended with their worker process"
        step.save(update_fields=["status", "next_attempt_at", "last_error"])
        trace_record(
            process_id=process.id,
            component=step.component,
            name=step.name,
            kind=TraceKind.FAILURE,
            status="dead",
            attempt=step.attempts,
            detail={"error": "worker lost", "runs": step.runs},
        )
        lifecycle.process_finish(process=process, status=ProcessStatus.FAILED)
    logger.error("step %s is dead: %s", step_id, step.last_error)
    return "dead: worker lost"


def _execute_locked(step_id: UUID, process_id: UUID) -> str | tuple[AfterCommit, dict[str, Any]]:
    """The step's transaction: its effect, the step done and the next command; or, for a step
    with work outside the database, the intent it recorded (the step stays open)."""
    step = _locked_step(step_id)
    process = step.process
    if step.status not in ACTIVE:
        return f"ignored: step is {step.status}"
    if step.client_erased and process.kind != ProcessKind.CLIENT_ERASURE:
        return _stop_for_erasure(process)
    if components.component_paused(step.component):
        _hold(step)  # a copy that reached a worker of a component under maintenance
        return f"held: {step.component} paused"
    definition = definition_for(process.kind).step(step.name)
    effect = definition.after_commit
    # With work after commit, the processed record is written with its outcome: a retry after a
    # failed send must find the intent again, not a record that says it is done.
    if not (_unprocessed(step) if effect else _claim(step)):
        return "ignored: already processed"
    lifecycle.process_wake(process=process)
    results = StepResults(process)
    result = definition.run(_context(process, results))
    if effect is not None:
        return effect, result
    _complete(process, step, result, results)
    return "done"


# Every step's transaction starts with these two reads: in plain SQL (common/plain_sql.py says
# why; composing the locked read took a fifth of a worker's CPU for a step).


@functools.cache
def _locked_step_sql() -> str:
    quote = connection.ops.quote_name
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {plain_sql.columns(Step, 's')}, {plain_sql.columns(Process, 'p')}, EXISTS"
        f" (SELECT 1 FROM {quote(ErasedClientId._meta.db_table)} e WHERE e.client_id = p.client_id)"
        f" FROM {quote(Step._meta.db_table)} s JOIN {quote(Process._meta.db_table)} p"
        f" ON p.id = s.process_id WHERE s.id = %s{lock}"
    )


@functools.cache
def _results_sql() -> str:
    table = connection.ops.quote_name(Step._meta.db_table)
    return f"SELECT name, result FROM {table} WHERE process_id = %s AND status = %s"


def _locked_step(step_id: UUID) -> Any:
    """The step with its process, the process row locked for the rest of the transaction (SQLite:
    the whole database), and whether the client's erasure has been accepted (`client_erased`):
    one query."""
    row = plain_sql.fetch_one(_locked_step_sql(), [plain_sql.bound(Step, "id", step_id)])
    if row is None:
        raise Step.DoesNotExist(f"no step {step_id}")
    width = len(Step._meta.concrete_fields)
    step: Any = plain_sql.instance(Step, row[:width])
    step.process = plain_sql.instance(Process, row[width:-1])
    step.client_erased = bool(row[-1])
    return step


def _stop_for_erasure(process: Process) -> str:
    """Erasure wins every race: once it is accepted, no other process of the client writes
    anything about them again (a registration's later steps would bring the data back)."""
    lifecycle.process_close(process_id=process.id, reason="client erased", by=ORCHESTRATOR)
    return "closed: client erased"


def _run_after_commit(
    step_id: UUID, process_id: UUID, effect: AfterCommit, intent: dict[str, Any]
) -> str:
    """Outside every transaction: the step's work, which settles the step inside the transaction
    that records its outcome."""
    outcome = "ignored: in flight in another worker"

    def settle(status: str, result: dict[str, Any]) -> None:
        nonlocal outcome
        outcome = _settle_effect(step_id, process_id, effect.name, status, result)

    effect.run(intent, settle)
    return outcome


def _settle_effect(
    step_id: UUID, process_id: UUID, name: str, status: str, result: dict[str, Any]
) -> str:
    step = _locked_step(step_id)
    process = step.process
    if step.status not in ACTIVE:
        return f"ignored: step is {step.status}"
    if not _claim(step):
        return "ignored: already processed"
    with trace_batch():  # the outcome, the step done and the next command: one trace write
        trace_record(
            process_id=process.id,
            component=step.component,
            name=name,
            kind=TraceKind.STEP,
            status=status,
            attempt=step.attempts,
        )
        _complete(process, step, result, StepResults(process))
    return "done"


def _complete(process: Process, step: Step, result: dict[str, Any], results: Results) -> None:
    """The step done, traced, and the next step's command, in the caller's transaction (one
    trace write for both)."""
    with trace_batch():
        _complete_step(process, step, result, results)


def _complete_step(process: Process, step: Step, result: dict[str, Any], results: Results) -> None:
    step.result = result
    step.status = StepStatus.DONE
    step.done_at = timezone.now()
    step.next_attempt_at = None
    plain_sql.update(step, ["result", "status", "done_at", "next_attempt_at"])
    trace_record(
        process_id=process.id,
        component=step.component,
        name=step.name,
        kind=TraceKind.STEP,
        status="done",
        attempt=step.attempts,
    )
    results[step.name] = step.result
    if definition_for(process.kind).step(step.name).versions_client and "version" in result:
        process.client_version = result["version"]
        client_version_set(process_id=process.id, version=process.client_version)
    _send_next(process, after=step.position, results=results)


def _claim(step: Step) -> bool:
    """Write the processed record; False when another copy already did (its transaction won)."""
    return processed_claim(message_id=step.id, consumer=step.component)


def _unprocessed(step: Step) -> bool:
    return not processed_already(message_id=step.id, consumer=step.component)


def _record_error(
    step_id: UUID, process_id: UUID, error: BaseException, *, name: str | None = None
) -> None:
    """The step (or its work after commit, traced under `name`) raised: retry, or fail."""
    with transaction.atomic():
        process = lock_process(process_id)
        step = Step.objects.get(pk=step_id)
        if step.status not in ACTIVE:
            return
        step.last_error = f"{type(error).__name__}: {error}"[:2000]
        # A domain refusal is final, except NotFound: what is missing may be on its way (a
        # purchase for a client whose registration has not reached crm yet), so it is retried.
        permanent = isinstance(error, ApplicationError) and not isinstance(error, NotFound)
        if permanent or step.attempts >= settings.ORCHESTRATOR_MAX_ATTEMPTS:
            _fail(process, step, reason="refused" if permanent else "error", error=error, name=name)
            return
        delay = error_backoff(step.attempts)
        step.status = StepStatus.WAITING
        step.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        step.runs = 0  # this run ended with an outcome: it did not take its worker down
        step.save(update_fields=["status", "next_attempt_at", "last_error", "runs"])
        trace_record(
            process_id=process.id,
            component=step.component,
            name=name or step.name,
            kind=TraceKind.RETRY,
            status="error",
            attempt=step.attempts,
            detail={"error": type(error).__name__, "retry_in": round(delay, 3)},
            error=error,
        )


def _fail(
    process: Process,
    step: Step,
    *,
    reason: str,
    error: BaseException | None,
    name: str | None = None,
) -> None:
    step.status = StepStatus.FAILED
    step.next_attempt_at = None
    if error is not None:
        step.traceback = "".join(traceback.format_exception(error))[-20_000:]
    step.save(update_fields=["status", "next_attempt_at", "last_error", "traceback"])
    detail: dict[str, Any] = {"reason": reason, "attempts": step.attempts}
    if error is not None:
        detail["error"] = type(error).__name__
    trace_record(
        process_id=process.id,
        component=step.component if error is not None else ORCHESTRATOR,
        name=name or step.name,
        kind=TraceKind.FAILURE,
        status="failed",
        attempt=step.attempts,
        detail=detail,
        error=error,
    )
    lifecycle.process_finish(process=process, status=ProcessStatus.FAILED)


# --- the sweeper (scheduler) ------------------------------------------------------------------


def steps_sweep(*, limit: int = 200) -> int:
    """Send what is due: unpublished commands, retries after an error, answers timed out."""
    now = timezone.now()
    due = list(
        Step.objects.filter(status__in=ACTIVE, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", "process_id", "component", "status")[:limit]
    )
    unanswered = [component for _, _, component, status in due if status == StepStatus.SENT]
    backlogged = backlog.components_backlogged(unanswered, now=now)
    for step_id, process_id, _, _ in due:
        with correlation.bound(process_id), transaction.atomic():
            _sweep_one(step_id, process_id, now, backlogged)
    return len(due)


def _sweep_one(step_id: UUID, process_id: UUID, now: Any, backlogged: set[str]) -> None:
    # A process a worker (or another scheduler) holds is left for the next sweep: never wait on
    # it, and never take its locks in another order than the worker does.
    process = Process.objects.select_for_update(skip_locked=True).filter(pk=process_id).first()
    if process is None:
        return
    step = Step.objects.get(pk=step_id)
    if step.status not in ACTIVE or step.next_attempt_at is None or step.next_attempt_at > now:
        return
    if components.component_paused(step.component):
        _hold(step)
        return
    if step.status == StepStatus.PENDING:  # never reached the broker: not a new attempt
        step.status = StepStatus.SENT
        step.next_attempt_at = now + timedelta(seconds=answer_timeout(step.attempts))
        step.save(update_fields=["status", "next_attempt_at"])
        relay.send_after_commit(_outgoing(step))
        return
    if step.status == StepStatus.SENT and backlog.waits_its_turn(
        step.component, step.sent_at, backlogged, now
    ):
        step.next_attempt_at = now + timedelta(seconds=answer_timeout(step.attempts))
        step.save(update_fields=["next_attempt_at"])
        return
    if step.status == StepStatus.SENT:
        waited = (now - step.sent_at).total_seconds() if step.sent_at else 0.0
        trace_record(
            process_id=process.id,
            component=ORCHESTRATOR,
            name=step.name,
            kind=TraceKind.RETRY,
            status="timed_out",
            attempt=step.attempts,
            detail={"to": step.component, "waited": round(waited, 3)},
        )
        if step.attempts >= settings.ORCHESTRATOR_MAX_ATTEMPTS:
            step.last_error = f"no answer from {step.component} after {step.attempts} attempts"
            _fail(process, step, reason="timeout", error=None)
            return
    _resend(step, now)


def _resend(step: Step, now: Any) -> None:
    if components.component_paused(step.component):
        _hold(step)
        return
    step.attempts += 1
    step.status = StepStatus.SENT
    step.sent_at = now
    step.next_attempt_at = now + timedelta(seconds=answer_timeout(step.attempts))
    step.save(update_fields=["attempts", "status", "sent_at", "next_attempt_at"])
    _announce_and_publish(step)


# --- people's actions -------------------------------------------------------------------------


def step_retry(*, step_id: UUID, by: str) -> Step:
    """Retry a failed step by hand: the process runs again from that step, with fresh attempts."""
    process_id = Step.objects.filter(pk=step_id).values_list("process_id", flat=True).first()
    if process_id is None:
        raise NotFound("No such step.")
    with correlation.bound(process_id), transaction.atomic():
        process = lock_process(process_id)
        step = Step.objects.get(pk=step_id)
        if step.status != StepStatus.FAILED or process.status != ProcessStatus.FAILED:
            raise ApplicationError("only a failed step of a failed process can be retried")
        lifecycle.process_resume(process=process, by=by, detail={"step": step.name})
        step.attempts = 0
        step.last_error = ""
        step.traceback = ""
        step.runs = 0
        step.save(update_fields=["runs"])
        _resend(step, timezone.now())
        return step
