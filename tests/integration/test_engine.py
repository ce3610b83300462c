"""The orchestration engine, one step at a time in this process: exact traces, retries, failures,
the sweeper and people's retries."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from common.errors import ApplicationError
from correspondence import services as correspondence_services
from correspondence.models import Message, MessageStatus
from crm import services as crm_services
from crm.models import Client
from integration import gateway
from integration.core import lifecycle
from integration.models import (
    Process,
    ProcessedMessage,
    ProcessKind,
    ProcessStatus,
    Step,
    StepStatus,
    TraceEntry,
)
from integration.orchestrator import engine
from marketing.models import AudienceMember
from tests.correspondence.mail import TransactionWatchingBackend
from tests.crm.factories import ClientFactory
from tests.integration.conftest import Broker, Sent
from tests.integration.helpers import details_of, overdue, register, trace_of

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def started(kind: str = "client_registration") -> tuple[Any, ...]:
    return ("integration", kind, "action", "started", 1)


def sent(name: str, attempt: int = 1) -> tuple[Any, ...]:
    return ("integration", name, "command", "sent", attempt)


def done(component: str, name: str, attempt: int = 1) -> tuple[Any, ...]:
    return (component, name, "step", "done", attempt)


def finished(status: str, kind: str = "client_registration") -> tuple[Any, ...]:
    return ("integration", kind, "action", status, 1)


REGISTRATION_TRACE = [
    started(),
    sent("create_client"),
    done("crm", "create_client"),
    sent("open_account"),
    done("sales", "open_account"),
    sent("send_welcome_email"),
    ("correspondence", "send_email", "step", "sent", 1),
    done("correspondence", "send_welcome_email"),
    sent("record_welcome_email"),
    done("crm", "record_welcome_email"),
    sent("add_to_audience"),
    done("marketing", "add_to_audience"),
    finished("completed"),
]


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Timeouts and backoffs at their base value, so that the tests can name them."""
    monkeypatch.setattr(engine, "random", SimpleNamespace(uniform=lambda low, high: 1.0))


def crm_down(monkeypatch: pytest.MonkeyPatch, error: Exception | None = None) -> None:
    def refuse(**kwargs: Any) -> Any:
        raise error or RuntimeError("crm is down")

    monkeypatch.setattr(crm_services, "client_create", refuse)


def open_step(process: Process) -> Step:
    return Step.objects.get(process=process, status__in=engine.ACTIVE)


def run_to_end(process: Process) -> list[str]:
    """Carry out each step the engine sends, as the components' workers would."""
    outcomes = []
    while (
        step := Step.objects.filter(process=process, status=StepStatus.SENT).first()
    ) is not None:
        outcomes.append(engine.step_execute(step_id=step.id))
    return outcomes


def a_run_step(step: Step) -> Sent:
    return Sent(engine.RUN_STEP_TASK, [str(step.id)], step.component, str(step.process_id))


# --- starting -------------------------------------------------------------------------------------


def test_begin_writes_started_and_the_first_command_and_publishes_it_after_commit(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a registration process just created
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        process = Process.objects.create(
            kind=ProcessKind.CLIENT_REGISTRATION,
            mode="orchestration",
            client_id=uuid.uuid4(),
            input={"email": "ada@example.com", "first_name": "Ada", "last_name": "L"},
        )

        # when it starts and the engine begins it
        lifecycle.process_started(process=process)
        engine.process_begin(process)
        assert broker.sent == []  # nothing leaves before the commit

    # then its trace says so, the first step is a command on crm's queue, published once
    step = Step.objects.get(process=process)
    assert trace_of(process.id) == [started(), sent("create_client")]
    assert details_of(process.id) == [
        {"mode": "orchestration"},
        {"to": "crm", "command_id": str(step.id)},
    ]
    assert (step.position, step.name, step.component, step.status, step.attempts) == (
        1,
        "create_client",
        "crm",
        StepStatus.SENT,
        1,
    )
    assert step.next_attempt_at is not None and step.sent_at is not None
    assert step.next_attempt_at - step.sent_at == pytest.approx(
        timedelta(seconds=30), abs=timedelta(milliseconds=100)
    )
    assert broker.sent == [a_run_step(step)]
    process.refresh_from_db()
    assert process.current_step == "create_client"


# --- carrying out steps ---------------------------------------------------------------------------


def test_each_step_runs_once_in_order_and_the_process_completes(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a registration with consent
    with django_capture_on_commit_callbacks(execute=True):
        process = register(marketing_consent=True)

    # when each command is carried out as it arrives
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = run_to_end(process)

    # then five steps ran, each once, and the trace is exactly the process
    process.refresh_from_db()
    assert outcomes == ["done"] * 5
    assert trace_of(process.id) == REGISTRATION_TRACE
    assert (process.status, process.current_step) == ("completed", "add_to_audience")
    assert process.finished_at is not None
    steps = list(Step.objects.filter(process=process).order_by("position"))
    assert [(s.position, s.name, s.status, s.attempts) for s in steps] == [
        (1, "create_client", "done", 1),
        (2, "open_account", "done", 1),
        (3, "send_welcome_email", "done", 1),
        (4, "record_welcome_email", "done", 1),
        (5, "add_to_audience", "done", 1),
    ]
    assert all(s.next_attempt_at is None and s.done_at is not None for s in steps)
    assert broker.sent == [a_run_step(step) for step in steps]
    assert [s.queue for s in broker.sent] == ["crm", "sales", "correspondence", "crm", "marketing"]
    assert ProcessedMessage.objects.count() == 5
    assert list(AudienceMember.objects.values_list("client_id", "consent")) == [
        (process.client_id, True)
    ]


def test_without_consent_the_audience_step_is_skipped() -> None:
    process = register(marketing_consent=False)

    run_to_end(process)

    process.refresh_from_db()
    assert process.status == "completed"
    assert trace_of(process.id) == [*REGISTRATION_TRACE[:10], REGISTRATION_TRACE[-1]]
    assert list(Step.objects.filter(process=process).values_list("name", flat=True)) == [
        "create_client",
        "open_account",
        "send_welcome_email",
        "record_welcome_email",
    ]
    assert AudienceMember.objects.count() == 0


def test_a_second_copy_of_a_done_command_is_ignored() -> None:
    # given a command carried out once
    process = register()
    step = open_step(process)
    assert engine.step_execute(step_id=step.id) == "done"
    trace = trace_of(process.id)

    # when a copy of it arrives
    outcome = engine.step_execute(step_id=step.id)

    # then nothing happens again
    assert outcome == "ignored: step is done"
    assert trace_of(process.id) == trace
    assert Client.objects.count() == 1
    assert ProcessedMessage.objects.filter(message_id=step.id).count() == 1


def test_a_copy_whose_processed_record_exists_does_nothing() -> None:
    # given another copy of the command already wrote its processed record
    process = register()
    step = open_step(process)
    ProcessedMessage.objects.create(message_id=step.id, consumer="crm")

    # when this copy runs
    outcome = engine.step_execute(step_id=step.id)

    # then it has no effect at all
    assert outcome == "ignored: already processed"
    assert Client.objects.count() == 0
    assert trace_of(process.id) == [started(), sent("create_client")]
    step.refresh_from_db()
    assert step.status == StepStatus.SENT


def test_an_unknown_step_is_reported() -> None:
    assert engine.step_execute(step_id=uuid.uuid4()) == "unknown step"


# --- errors ---------------------------------------------------------------------------------------


def test_an_error_schedules_a_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    # given crm raises
    process = register()
    crm_down(monkeypatch)
    step = open_step(process)

    # when the command is carried out
    before = timezone.now()
    outcome = engine.step_execute(step_id=step.id)

    # then the step waits for a retry after its backoff, and the trace says why
    step.refresh_from_db()
    assert outcome == "error: RuntimeError"
    assert (step.status, step.attempts, step.last_error) == (
        StepStatus.WAITING,
        1,
        "RuntimeError: crm is down",
    )
    assert step.next_attempt_at is not None
    assert (
        before + timedelta(seconds=1)
        <= step.next_attempt_at
        <= timezone.now() + timedelta(seconds=1)
    )
    assert trace_of(process.id) == [
        started(),
        sent("create_client"),
        ("crm", "create_client", "retry", "error", 1),
    ]
    assert details_of(process.id)[-1] == {"error": "RuntimeError", "retry_in": 1.0}
    assert process.trace.get(seq=3).traceback.rstrip().endswith("RuntimeError: crm is down")
    process.refresh_from_db()
    assert process.status == "running"
    assert ProcessedMessage.objects.count() == 0  # the failed attempt left no processed record


def test_the_process_fails_when_the_attempts_are_spent(
    monkeypatch: pytest.MonkeyPatch,
    broker: Broker,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # given crm raises every time
    process = register()
    crm_down(monkeypatch)
    step = open_step(process)

    # when the command is carried out, retried by the sweeper, three times
    outcomes = []
    for _ in range(2):
        outcomes.append(engine.step_execute(step_id=step.id))
        overdue(Step.objects.filter(pk=step.id))
        with django_capture_on_commit_callbacks(execute=True):
            assert engine.steps_sweep() == 1
    outcomes.append(engine.step_execute(step_id=step.id))

    # then the third error fails the step and the process
    assert outcomes == ["error: RuntimeError"] * 3
    assert trace_of(process.id) == [
        started(),
        sent("create_client"),
        ("crm", "create_client", "retry", "error", 1),
        sent("create_client", 2),
        ("crm", "create_client", "retry", "error", 2),
        sent("create_client", 3),
        ("crm", "create_client", "failure", "failed", 3),
        finished("failed"),
    ]
    details = details_of(process.id)
    assert details[4] == {"error": "RuntimeError", "retry_in": 2.0}
    assert details[6] == {"reason": "error", "attempts": 3, "error": "RuntimeError"}
    step.refresh_from_db()
    assert (step.status, step.attempts, step.next_attempt_at) == (StepStatus.FAILED, 3, None)
    assert "RuntimeError: crm is down" in step.traceback
    process.refresh_from_db()
    assert process.status == "failed" and process.finished_at is not None
    assert broker.sent == [a_run_step(step)] * 2
    # and a late copy of the command changes nothing
    assert engine.step_execute(step_id=step.id) == "ignored: step is failed"


def test_a_domain_refusal_fails_the_process_at_once() -> None:
    # given crm already holds another client with this email (created between check and step)
    process = register()
    ClientFactory.create(email="Ada@example.com")
    step = open_step(process)

    # when crm is told to create the client
    outcome = engine.step_execute(step_id=step.id)

    # then it refuses for good: no retry
    assert outcome == "error: Conflict"
    assert trace_of(process.id) == [
        started(),
        sent("create_client"),
        ("crm", "create_client", "failure", "failed", 1),
        finished("failed"),
    ]
    assert details_of(process.id)[2] == {"reason": "refused", "attempts": 1, "error": "Conflict"}
    step.refresh_from_db()
    assert (step.status, step.next_attempt_at) == (StepStatus.FAILED, None)
    assert step.last_error.startswith("Conflict: ")


def test_not_found_is_retried_it_may_be_a_client_whose_registration_is_in_flight() -> None:
    # given a purchase for a client whose registration has not reached crm yet
    registration = register()
    purchase, _ = gateway.purchase_record(
        client_id=registration.client_id,
        **{"order_ref": "SHOP-1", "total": "9.90", "currency": "EUR"},
        initiator=gateway.SYSTEM,
    )
    assert engine.step_execute(step_id=open_step(purchase).id) == "done"  # sales records it
    step = open_step(purchase)

    # when crm is asked to add the purchase's value to a client it does not know yet
    outcome = engine.step_execute(step_id=step.id)

    # then the step waits for a retry instead of failing the purchase
    assert outcome == "error: NotFound"
    step.refresh_from_db()
    assert (step.name, step.status) == ("add_client_value", StepStatus.WAITING)
    assert trace_of(purchase.id)[-1] == ("crm", "add_client_value", "retry", "error", 1)
    purchase.refresh_from_db()
    assert purchase.status == "running"

    # and once the registration has reached crm, the retry succeeds
    run_to_end(registration)
    overdue(Step.objects.filter(pk=step.id))
    engine.steps_sweep()
    run_to_end(purchase)
    purchase.refresh_from_db()
    assert purchase.status == "completed"
    assert Client.objects.get().purchase_count == 1


# --- the sweeper ----------------------------------------------------------------------------------


def test_a_command_the_broker_refused_is_sent_again_without_counting_an_attempt(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given the broker refused the first command
    broker.refusing = OperationalError("connection refused")
    with django_capture_on_commit_callbacks(execute=True):
        process = register()
    step = open_step(process)
    assert step.status == StepStatus.PENDING
    assert step.next_attempt_at is not None
    assert step.next_attempt_at - timezone.now() <= timedelta(seconds=1)

    # when the broker is back and the sweeper finds it due
    broker.refusing = None
    engine.relay._broker_down_until = 0.0
    overdue(Step.objects.filter(pk=step.id))
    with django_capture_on_commit_callbacks(execute=True):
        swept = engine.steps_sweep()

    # then it is sent once more as the same attempt, with no new trace entry
    step.refresh_from_db()
    assert swept == 1
    assert (step.status, step.attempts) == (StepStatus.SENT, 1)
    assert step.next_attempt_at is not None
    assert step.next_attempt_at - timezone.now() == pytest.approx(
        timedelta(seconds=30), abs=timedelta(seconds=1)
    )
    assert trace_of(process.id) == [started(), sent("create_client")]
    assert broker.sent == [a_run_step(step)]


def test_an_unanswered_command_times_out_and_is_sent_as_the_next_attempt(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a command sent 31 s ago and never answered
    process = register()
    step = open_step(process)
    Step.objects.filter(pk=step.id).update(sent_at=timezone.now() - timedelta(seconds=31))
    overdue(Step.objects.filter(pk=step.id))

    # when the sweeper runs
    with django_capture_on_commit_callbacks(execute=True):
        swept = engine.steps_sweep()

    # then it says the answer timed out and sends attempt 2, which waits twice as long
    step.refresh_from_db()
    assert swept == 1
    assert trace_of(process.id) == [
        started(),
        sent("create_client"),
        ("integration", "create_client", "retry", "timed_out", 1),
        sent("create_client", 2),
    ]
    timed_out = details_of(process.id)[2]
    assert timed_out["to"] == "crm" and 31 <= timed_out["waited"] < 33
    assert (step.status, step.attempts) == (StepStatus.SENT, 2)
    assert step.next_attempt_at is not None and step.sent_at is not None
    assert step.next_attempt_at - step.sent_at == timedelta(seconds=60)
    assert broker.sent == [a_run_step(step)]


def test_an_unanswered_last_attempt_fails_the_process(
    broker: Broker, django_capture_on_commit_callbacks: Capture
) -> None:
    # given the third and last attempt is unanswered
    process = register()
    step = open_step(process)
    Step.objects.filter(pk=step.id).update(attempts=3)
    overdue(Step.objects.filter(pk=step.id))

    # when the sweeper runs
    with django_capture_on_commit_callbacks(execute=True):
        engine.steps_sweep()

    # then the process fails, and nothing is sent
    step.refresh_from_db()
    assert trace_of(process.id) == [
        started(),
        sent("create_client"),
        ("integration", "create_client", "retry", "timed_out", 3),
        ("integration", "create_client", "failure", "failed", 3),
        finished("failed"),
    ]
    assert details_of(process.id)[3] == {"reason": "timeout", "attempts": 3}
    assert (step.status, step.last_error, step.next_attempt_at) == (
        StepStatus.FAILED,
        "no answer from crm after 3 attempts",
        None,
    )
    process.refresh_from_db()
    assert process.status == "failed"
    assert broker.sent == []


def test_the_sweeper_leaves_steps_that_are_not_due() -> None:
    process = register()

    assert engine.steps_sweep() == 0

    assert trace_of(process.id) == [started(), sent("create_client")]
    assert open_step(process).attempts == 1


# --- people's retries -----------------------------------------------------------------------------


def failed_registration(**overrides: Any) -> tuple[Process, Step]:
    process = register(**overrides)
    step = open_step(process)
    with pytest.MonkeyPatch.context() as patch:
        crm_down(patch, ApplicationError("refused"))
        engine.step_execute(step_id=step.id)
    process.refresh_from_db()
    assert process.status == "failed"
    return process, step


def test_a_person_retries_a_failed_step_and_the_process_runs_again(
    monkeypatch: pytest.MonkeyPatch,
    broker: Broker,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    # given a process whose first step failed
    process, step = failed_registration()

    # when a person retries the step
    with django_capture_on_commit_callbacks(execute=True):
        retried = engine.step_retry(step_id=step.id, by="user:ops")

    # then the process runs again from that step, with fresh attempts
    process.refresh_from_db()
    assert (process.status, process.finished_at) == ("running", None)
    assert trace_of(process.id)[-2:] == [finished("running"), sent("create_client", 1)]
    assert details_of(process.id)[-2] == {"step": "create_client", "by": "user:ops"}
    assert (retried.status, retried.attempts, retried.last_error, retried.traceback) == (
        StepStatus.SENT,
        1,
        "",
        "",
    )
    assert broker.sent == [a_run_step(step)]
    # and it completes
    run_to_end(process)
    process.refresh_from_db()
    assert process.status == "completed" and process.finished_at is not None


def test_only_a_failed_step_of_a_failed_process_can_be_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a step still running
    running = register()
    with pytest.raises(ApplicationError) as raised:
        engine.step_retry(step_id=open_step(running).id, by="ops")
    assert raised.value.detail == "only a failed step of a failed process can be retried"

    # a failed step of a process a person has closed since
    process, step = failed_registration(email="grace@example.com")
    Process.objects.filter(pk=process.id).update(status=ProcessStatus.CLOSED)
    with pytest.raises(ApplicationError):
        engine.step_retry(step_id=step.id, by="ops")
    step.refresh_from_db()
    assert step.status == StepStatus.FAILED


# --- how long a command waits ---------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("jitter", [0.8, 1.2])
def test_answer_timeout_is_t_times_two_to_the_attempt_within_jitter_and_at_most_600(
    attempt: int, jitter: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        engine, "random", SimpleNamespace(uniform=lambda low, high: high if jitter > 1 else low)
    )

    assert engine.answer_timeout(attempt) == pytest.approx(
        min(600.0, 30 * 2 ** (attempt - 1) * jitter)
    )


def test_answer_timeout_jitter_stays_within_twenty_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "random", random)  # real jitter
    for attempt in (1, 3, 5, 9):
        base = 30 * 2 ** (attempt - 1)
        samples = [engine.answer_timeout(attempt) for _ in range(300)]
        assert all(min(600, 0.8 * base) <= s <= min(600, 1.2 * base) for s in samples)
        assert len(set(samples)) > (1 if base * 0.8 < 600 else 0)


# --- sending email: after commit, its outcome in a transaction of its own ------------------------

WATCHING_BACKEND = "tests.correspondence.mail.TransactionWatchingBackend"
REFUSING_BACKEND = "tests.correspondence.mail.RefusingBackend"


def send_email(status: str, attempt: int = 1) -> tuple[Any, ...]:
    return ("correspondence", "send_email", "step", status, attempt)


def run_until(process: Process, name: str) -> Step:
    """Carry out the process's steps up to the one named, and return it (not yet run)."""
    while (step := open_step(process)).name != name:
        assert engine.step_execute(step_id=step.id) == "done"
    return step


class WorkerDied(BaseException):
    """The worker's process ends here: nothing after it runs, no handler records it."""


@pytest.mark.django_db(transaction=True)
def test_the_welcome_email_is_sent_after_the_steps_transaction_commits(
    settings: Any, mailoutbox: list[Any]
) -> None:
    # given a registration, and a mail server that notes whether a transaction is open
    settings.EMAIL_BACKEND = WATCHING_BACKEND
    TransactionWatchingBackend.in_transaction.clear()
    process = register()

    # when each command is carried out as it arrives
    outcomes = run_to_end(process)

    # then the email went out once, with no transaction open (no lock held), and the trace has
    # the send as its own entry, before the step counts as done
    assert outcomes == ["done"] * 4
    assert TransactionWatchingBackend.in_transaction == [False]
    assert trace_of(process.id) == [*REGISTRATION_TRACE[:10], REGISTRATION_TRACE[-1]]
    message = Message.objects.get()
    assert (message.status, message.attempts) == (MessageStatus.SENT, 1)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [message.message_id_header]
    step = Step.objects.get(process=process, name="send_welcome_email")
    assert step.result == {
        "status": "sent",
        "message_id": str(message.id),
        "subject": "Welcome to Ensemble, Ada",
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
    }
    assert ProcessedMessage.objects.filter(message_id=step.id).count() == 1


def test_a_failed_send_is_retried_like_a_step_with_the_same_message_id(
    settings: Any, mailoutbox: list[Any]
) -> None:
    # given a registration at its send step, and a mail server that refuses
    process = register()
    step = run_until(process, "send_welcome_email")
    settings.EMAIL_BACKEND = REFUSING_BACKEND

    # when the step is carried out
    outcome = engine.step_execute(step_id=step.id)

    # then the intent stays queued for a retry: the step waits, the send's error is traced
    assert outcome == "error: ConnectionRefusedError"
    step.refresh_from_db()
    assert (step.status, step.attempts) == (StepStatus.WAITING, 1)
    assert trace_of(process.id)[-2:] == [
        sent("send_welcome_email"),
        ("correspondence", "send_email", "retry", "error", 1),
    ]
    assert details_of(process.id)[-1] == {"error": "ConnectionRefusedError", "retry_in": 1.0}
    queued = Message.objects.get()
    assert (queued.status, queued.error) == (
        MessageStatus.FAILED,
        "ConnectionRefusedError: [Errno 111] Connection refused",
    )
    assert ProcessedMessage.objects.filter(message_id=step.id).count() == 0

    # and when the server is back and the sweeper sends the command again
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    overdue(Step.objects.filter(pk=step.id))
    engine.steps_sweep()
    assert engine.step_execute(step_id=step.id) == "done"

    # then the same message goes out once, with its Message-ID, and the process moves on
    assert trace_of(process.id)[5:] == [
        sent("send_welcome_email"),
        ("correspondence", "send_email", "retry", "error", 1),
        sent("send_welcome_email", 2),
        send_email("sent", 2),
        done("correspondence", "send_welcome_email", 2),
        sent("record_welcome_email"),
    ]
    message = Message.objects.get()
    assert (message.id, message.status, message.attempts) == (queued.id, MessageStatus.SENT, 2)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [queued.message_id_header]
    assert open_step(process).name == "record_welcome_email"


def test_a_send_failing_every_attempt_fails_the_process(settings: Any) -> None:
    # given a mail server that refuses every time
    process = register()
    step = run_until(process, "send_welcome_email")
    settings.EMAIL_BACKEND = REFUSING_BACKEND

    # when the step is carried out and retried until its attempts are spent
    for _ in range(2):
        engine.step_execute(step_id=step.id)
        overdue(Step.objects.filter(pk=step.id))
        engine.steps_sweep()
    engine.step_execute(step_id=step.id)

    # then the process fails visibly, naming the send
    assert trace_of(process.id)[5:] == [
        sent("send_welcome_email"),
        ("correspondence", "send_email", "retry", "error", 1),
        sent("send_welcome_email", 2),
        ("correspondence", "send_email", "retry", "error", 2),
        sent("send_welcome_email", 3),
        ("correspondence", "send_email", "failure", "failed", 3),
        finished("failed"),
    ]
    assert details_of(process.id)[-2] == {
        "reason": "error",
        "attempts": 3,
        "error": "ConnectionRefusedError",
    }
    assert Message.objects.get().status == MessageStatus.FAILED


def test_a_step_run_again_after_a_crash_mid_send_sends_its_message_again_with_the_same_id(
    monkeypatch: pytest.MonkeyPatch, mailoutbox: list[Any]
) -> None:
    # given the worker died after the server accepted the email, before recording it
    process = register()
    step = run_until(process, "send_welcome_email")
    with monkeypatch.context() as patch:
        patch.setattr(correspondence_services, "_record_outcome", crash)
        with pytest.raises(WorkerDied):
            engine.step_execute(step_id=step.id)
    claimed = Message.objects.get()
    assert (claimed.status, len(mailoutbox)) == (MessageStatus.SENDING, 1)
    assert trace_of(process.id)[-1] == sent("send_welcome_email")

    # when its claim has lapsed and a copy of the command arrives
    Message.objects.update(sending_since=timezone.now() - timedelta(hours=1))
    assert engine.step_execute(step_id=step.id) == "done"

    # then the one message is sent again, with the same Message-ID (the only repeat there is)
    message = Message.objects.get()
    assert (message.id, message.status, message.attempts) == (claimed.id, MessageStatus.SENT, 2)
    assert [m.extra_headers["Message-ID"] for m in mailoutbox] == [claimed.message_id_header] * 2
    assert trace_of(process.id)[-3:] == [
        send_email("sent"),
        done("correspondence", "send_welcome_email"),
        sent("record_welcome_email"),
    ]


def crash(*args: Any) -> None:
    raise WorkerDied


def test_an_erasure_accepted_before_a_step_closes_the_process_and_nothing_is_written(
    mailoutbox: list[Any],
) -> None:
    # given a registration at its send step when the client's erasure is accepted
    process = register()
    step = run_until(process, "send_welcome_email")
    gateway.client_erase(client_id=process.client_id, initiator=gateway.SYSTEM)

    # when the step is carried out
    assert engine.step_execute(step_id=step.id) == "closed: client erased"

    # then erasure wins: nothing is queued or sent, and the registration ends there, closed
    assert mailoutbox == []
    assert Message.objects.count() == 0
    assert Process.objects.get(pk=process.id).status == "closed"
    assert Step.objects.get(pk=step.id).status == "skipped"
    assert trace_of(process.id)[5:] == [sent("send_welcome_email"), finished("closed")]
    assert TraceEntry.objects.get(process=process, status="closed").detail == {
        "reason": "client erased",
        "by": "integration",
    }


def test_an_update_of_an_erased_client_writes_nothing_to_crm() -> None:
    # given an update started before the client's erasure was accepted
    client = ClientFactory.create()
    gateway.registry_add(client_id=client.id, email=client.email)
    process = gateway.client_update(
        client_id=client.id, initiator=gateway.SYSTEM, phone="+1 555 0100"
    )
    step = Step.objects.get(process=process, name="update_client")
    gateway.client_erase(client_id=client.id, initiator=gateway.SYSTEM)

    # when its step reaches crm
    assert engine.step_execute(step_id=step.id) == "closed: client erased"

    # then crm's record is untouched
    client.refresh_from_db()
    assert client.phone != "+1 555 0100"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_step_holds_its_process_row_locked_until_its_transaction_ends() -> None:
    import psycopg

    from integration.models import ErasedClientId
    from tests.support.processes import database_url

    process = register()
    step = open_step(process)
    ErasedClientId.objects.create(client_id=process.client_id)
    lock = "SELECT 1 FROM integration_process WHERE id = %s FOR UPDATE NOWAIT"

    with psycopg.connect(database_url(), autocommit=True) as other:
        with transaction.atomic():
            read = engine._locked_step(step.id)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(lock, [process.id])
        assert other.execute(lock, [process.id]).fetchone() == (1,)

    assert (read.pk, read.process.pk, read.process.kind, read.client_erased) == (
        step.pk,
        process.pk,
        "client_registration",
        True,
    )


# --- the results a step is handed ---------------------------------------------------------------


def test_earlier_results_are_read_once_and_only_when_a_step_asks_for_one(
    django_assert_num_queries: Callable[..., Any],
) -> None:
    # given a process whose first step is done with a result
    process = register()
    Step.objects.filter(process=process, name="create_client").update(
        status="done", result={"version": 1}
    )

    # when a run sets the result of the step it completes, and reads it back
    with django_assert_num_queries(0):
        results = engine.StepResults(process)
        results["open_account"] = {"account": "A-1"}
        assert results["open_account"] == {"account": "A-1"}

    # then asking for any other reads the stored ones, once; what the run set stays its own
    with django_assert_num_queries(1):
        assert results.get("create_client") == {"version": 1}
        assert results.get("send_welcome_email") is None
        assert dict(results) == {
            "create_client": {"version": 1},
            "open_account": {"account": "A-1"},
        }
