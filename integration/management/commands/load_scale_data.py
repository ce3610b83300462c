"""`manage.py load_scale_data --clients 100000 --processes 200000 --trace-entries 2000000`:
a realistic volume of data for measuring pages and queries at scale.

Every row is derived from its client's number alone (ids, names, statuses, traces), and clients
are loaded in order, one transaction per batch: a second run with the same numbers adds nothing,
and a run with larger numbers (same proportions) tops the data up to them. Bulk loads: COPY on
PostgreSQL (psycopg 3's `cursor.copy`), bulk_create batches elsewhere. Not for production
databases: the clients are fictitious (`@scale.example`).

The shapes follow what the product writes: each client has its registration process and a mix
of purchases and updates; processes are orchestrated or choreographed, mostly completed, some
failed (with retry and failure trace entries and their tracebacks), running, stuck or closed;
orchestrated ones have their steps, choreographed ones their events and deliveries; clients
have their sales account and their replicas (sales, correspondence, the consenting ones
marketing's audience) at their current version, as after a switch to choreography.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction

from correspondence.models import Recipient
from crm.models import Client
from integration.core import tally
from integration.models import (
    Delivery,
    EventRecord,
    OrderKey,
    Process,
    RegisteredEmail,
    Step,
    TraceEntry,
)
from marketing.models import DEFAULT_AUDIENCE, AudienceMember
from sales.models import CustomerAccount, CustomerReplica, Purchase

EMAIL_DOMAIN = "scale.example"
BATCH_CLIENTS = 2000
ANCHOR = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
CLIENT_SPACING = dt.timedelta(minutes=7)  # 100,000 clients over about 16 months

# Ids are numbers under a fixed prefix per table, so that each row's id is its number's.
CLIENT_PREFIX, PROCESS_PREFIX, STEP_PREFIX, EVENT_PREFIX, DELIVERY_PREFIX, ACCOUNT_PREFIX = (
    0x5CA1E001,
    0x5CA1E002,
    0x5CA1E003,
    0x5CA1E004,
    0x5CA1E005,
    0x5CA1E006,
)
AUDIENCE_PREFIX = 0x5CA1E007
PURCHASE_PREFIX = 0x5CA1E008

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "John",
    "Radia",
    "Tim",
    "Katherine",
    "Dennis",
    "Hedy",
    "Linus",
    "Sophie",
    "Niklaus",
    "Lynn",
    "Guido",
    "Anita",
    "Bjarne",
    "Karen",
    "Vint",
    "Shafi",
    "Leslie",
    "Mary",
    "Claude",
    "Joan",
    "Robin",
    "Ida",
    "Peter",
    "Jean",
    "Carl",
    "Rosa",
    "Omar",
    "Lena",
    "Yuki",
    "Aisha",
    "Marco",
    "Ines",
    "Tomas",
    "Elena",
    "Hugo",
    "Nora",
    "Ravi",
)
LAST_SYLLABLES = (
    "bar",
    "ker",
    "lov",
    "ton",
    "mar",
    "wen",
    "dal",
    "sho",
    "rig",
    "fen",
    "tal",
    "mor",
    "ble",
    "cas",
    "dun",
    "hol",
)
COMPANY_WORDS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Hooli",
)
COMPANY_SUFFIXES = (
    "Ltd",
    "GmbH",
    "SA",
    "Inc",
    "BV",
    "Oy",
    "AB",
    "SRL",
    "Co",
    "Group",
)
CURRENCIES = ("EUR", "EUR", "EUR", "GBP", "USD", "CHF")

# Status of a process, by share (the rest completed).
STATUS_SHARES = (("failed", 0.02), ("running", 0.015), ("stuck", 0.01), ("closed", 0.005))

ORCHESTRATED_STEPS = {
    "client_registration": (
        ("create_client", "crm"),
        ("open_account", "sales"),
        ("send_welcome_email", "correspondence"),
        ("record_welcome_email", "crm"),
        ("add_to_audience", "marketing"),
    ),
    "purchase": (
        ("record_purchase", "sales"),
        ("add_client_value", "crm"),
        ("send_receipt", "correspondence"),
        ("record_receipt", "crm"),
    ),
    "client_update": (("update_client", "crm"), ("sync_audience", "marketing")),
}
CHOREOGRAPHED = {
    "client_registration": (
        "ClientRegistered",
        (("crm.create_client", "crm"), ("sales.replicate_client", "sales")),
    ),
    "purchase": (
        "PurchaseRequested",
        (("sales.record_purchase", "sales"), ("crm.add_purchase_value", "crm")),
    ),
    "client_update": (
        "ClientUpdateRequested",
        (("crm.update_client", "crm"), ("sales.replicate_client_update", "sales")),
    ),
}
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "correspondence/services.py", line 88, in message_send\n'
    "    connection.send_messages([email])\n"
    "TimeoutError: SMTP server did not answer within 10 s\n"
)


def _id(prefix: int, number: int) -> uuid.UUID:
    return uuid.UUID(int=(prefix << 96) | number)


def last_name(number: int) -> str:
    # 16^3 = 4,096 distinct surnames: a name search finds a realistic handful at 100,000.
    a, b, c = number % 16, (number // 16) % 16, (number // 256) % 16
    return (LAST_SYLLABLES[a] + LAST_SYLLABLES[b] + LAST_SYLLABLES[c]).capitalize()


def client_email(number: int) -> str:
    return f"client{number:07d}@{EMAIL_DOMAIN}"


def client_id(number: int) -> uuid.UUID:
    return _id(CLIENT_PREFIX, number)


def process_id(ordinal: int) -> uuid.UUID:
    return _id(PROCESS_PREFIX, ordinal)


class Rows:
    """Rows per model, as tuples in the order of that model's `columns`."""

    columns: dict[type[models.Model], tuple[str, ...]] = {
        Client: (
            "id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "marketing_consent",
            "registered_at",
            "updated_at",
            "lifetime_values",
            "purchase_count",
            "version",
        ),
        CustomerAccount: ("id", "client_id", "opened_at", "status"),
        CustomerReplica: (
            "client_id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "marketing_consent",
            "registered_at",
            "client_version",
            "as_of",
        ),
        Recipient: ("client_id", "email", "first_name", "client_version", "as_of"),
        AudienceMember: (
            "id",
            "audience",
            "client_id",
            "email",
            "consent",
            "joined_at",
            "left_at",
            "client_version",
        ),
        RegisteredEmail: ("email", "client_id", "process_id", "registered_at"),
        Purchase: (
            "id",
            "client_id",
            "order_ref",
            "total",
            "currency",
            "purchased_at",
            "recorded_at",
        ),
        OrderKey: ("client_id", "order_ref", "process_id"),
        Process: (
            "id",
            "kind",
            "mode",
            "status",
            "client_id",
            "input",
            "started_at",
            "finished_at",
            "last_activity_at",
            "trace_count",
            "current_step",
            "client_version",
        ),
        TraceEntry: (
            "process_id",
            "seq",
            "at",
            "component",
            "name",
            "kind",
            "status",
            "attempt",
            "detail",
            "traceback",
        ),
        Step: (
            "id",
            "process_id",
            "position",
            "name",
            "component",
            "status",
            "attempts",
            "runs",
            "next_attempt_at",
            "created_at",
            "sent_at",
            "done_at",
            "result",
            "last_error",
            "traceback",
        ),
        EventRecord: (
            "id",
            "name",
            "schema_version",
            "source",
            "process_id",
            "client_id",
            "payload",
            "published_at",
        ),
        Delivery: (
            "id",
            "event_id",
            "process_id",
            "listener",
            "component",
            "status",
            "attempts",
            "sends",
            "runs",
            "next_attempt_at",
            "created_at",
            "sent_at",
            "done_at",
            "replay",
            "last_error",
            "traceback",
        ),
    }

    def __init__(self) -> None:
        self.by_model: dict[type[models.Model], list[tuple[Any, ...]]] = {
            model: [] for model in self.columns
        }

    def add(self, model: type[models.Model], *values: Any) -> None:
        self.by_model[model].append(values)

    def count(self) -> int:
        return sum(len(rows) for rows in self.by_model.values())


class Shape:
    """How many processes and trace entries each client gets, from the requested totals."""

    def __init__(self, clients: int, processes: int, trace_entries: int) -> None:
        self.clients, self.processes, self.trace_entries = clients, processes, trace_entries

    def first_process(self, number: int) -> int:
        return number * self.processes // self.clients

    def entries_before(self, ordinal: int) -> int:
        return ordinal * self.trace_entries // self.processes


def client_rows(number: int, shape: Shape, rows: Rows) -> None:
    rng = random.Random(number)
    cid = client_id(number)
    email = client_email(number)
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = last_name(number)
    company = (
        f"{COMPANY_WORDS[rng.randrange(len(COMPANY_WORDS))]} "
        f"{COMPANY_SUFFIXES[rng.randrange(len(COMPANY_SUFFIXES))]}"
        if rng.random() < 0.6
        else ""
    )
    phone = f"+41 79 {rng.randrange(1000000, 9999999)}" if rng.random() < 0.5 else ""
    consent = rng.random() < 0.6
    registered = ANCHOR + number * CLIENT_SPACING
    first_ordinal = shape.first_process(number)
    ordinals = range(first_ordinal, shape.first_process(number + 1))
    version = 1
    purchases = 0
    values: dict[str, Decimal] = {}
    moment = registered
    for position, ordinal in enumerate(ordinals):
        kind = (
            "client_registration"
            if position == 0
            else ("purchase" if rng.random() < 0.7 else "client_update")
        )
        mode = "orchestration" if rng.random() < 0.5 else "choreography"
        roll, status = rng.random(), "completed"
        for candidate, share in STATUS_SHARES:
            if roll < share:
                status = candidate
                break
            roll -= share
        if position == 0:
            status = "completed" if status in ("running", "stuck") else status
        started = moment
        moment = moment + dt.timedelta(hours=rng.randrange(1, 24 * 30))
        finished = started + dt.timedelta(milliseconds=rng.randrange(40, 900))
        pid = process_id(ordinal)
        input_: dict[str, Any]
        if kind == "client_registration":
            version = 2  # created, then its welcome email recorded
            input_ = {"email": email, "first_name": first, "last_name": last}
        elif kind == "purchase":
            order_ref = f"ORD-{number}-{position}"
            total = Decimal(rng.randrange(500, 50000)) / 100
            currency = CURRENCIES[rng.randrange(len(CURRENCIES))]
            input_ = {"order_ref": order_ref, "total": str(total), "currency": currency}
            rows.add(OrderKey, cid, order_ref, pid)
            if status == "completed":
                purchases += 1
                version += 2  # its value added, its receipt recorded
                values[currency] = values.get(currency, Decimal(0)) + total
                rows.add(
                    Purchase,
                    _id(PURCHASE_PREFIX, ordinal),
                    cid,
                    order_ref,
                    total,
                    currency,
                    started,
                    finished,
                )
        else:
            input_ = {"changes": {"phone": phone}}
            if status == "completed":
                version += 1
        entries = shape.entries_before(ordinal + 1) - shape.entries_before(ordinal)
        _process_rows(
            rows,
            pid=pid,
            cid=cid,
            kind=kind,
            mode=mode,
            status=status,
            started=started,
            finished=finished,
            entries=entries,
            input_=input_,
            version=version,
            ordinal=ordinal,
        )
        if position == 0:
            rows.add(RegisteredEmail, email, cid, pid, started)
    as_of = moment
    rows.add(
        Client,
        cid,
        email,
        first,
        last,
        phone,
        company,
        consent,
        registered,
        as_of,
        {c: str(v) for c, v in values.items()},
        purchases,
        version,
    )
    rows.add(CustomerAccount, _id(ACCOUNT_PREFIX, number), cid, registered, "open")
    rows.add(
        CustomerReplica,
        cid,
        email,
        first,
        last,
        phone,
        company,
        consent,
        registered,
        version,
        as_of,
    )
    rows.add(Recipient, cid, email, first, version, as_of)
    if consent:
        rows.add(
            AudienceMember,
            _id(AUDIENCE_PREFIX, number),
            DEFAULT_AUDIENCE,
            cid,
            email,
            True,
            registered,
            None,
            version,
        )


def _process_rows(
    rows: Rows,
    *,
    pid: uuid.UUID,
    cid: uuid.UUID,
    kind: str,
    mode: str,
    status: str,
    started: dt.datetime,
    finished: dt.datetime,
    entries: int,
    input_: dict[str, Any],
    version: int,
    ordinal: int,
) -> None:
    done = status in ("completed", "failed", "closed")
    step_names = ORCHESTRATED_STEPS[kind]
    # The trace: command and step (orchestrated) or event and delivery (choreographed) in
    # turns, ending in a retry and a failure for a failed process, a person's close for a closed.
    ending: list[tuple[str, str, str, str, int, str]] = []
    if status == "failed":
        ending = [
            ("correspondence", "send_email", "retry", "retry", 2, TRACEBACK),
            ("correspondence", "send_email", "failure", "failed", 8, TRACEBACK),
        ]
    elif status == "closed":
        ending = [("integration", "close", "action", "closed", 1, "")]
    body = max(0, entries - len(ending))
    event_name, listeners = CHOREOGRAPHED[kind]
    for seq in range(1, entries + 1):
        at = started + dt.timedelta(milliseconds=20 * seq)
        if seq > body:
            component, name, entry_kind, entry_status, attempt, traceback = ending[seq - body - 1]
        elif mode == "orchestration":
            name, component = step_names[((seq - 1) // 2) % len(step_names)]
            is_command = seq % 2 == 1
            entry_kind = "command" if is_command else "step"
            entry_status = "sent" if is_command else "done"
            attempt, traceback = 1, ""
        else:
            listener, component = listeners[((seq - 1) // 2) % len(listeners)]
            is_event = seq % 2 == 1
            entry_kind = "event" if is_event else "delivery"
            name = event_name if is_event else listener
            entry_status = "published" if is_event else "done"
            attempt, traceback = 1, ""
        rows.add(
            TraceEntry,
            pid,
            seq,
            at,
            component,
            name,
            entry_kind,
            entry_status,
            attempt,
            None,
            traceback,
        )
    last_at = started + dt.timedelta(milliseconds=20 * max(entries, 1))
    rows.add(
        Process,
        pid,
        kind,
        mode,
        status,
        cid,
        input_,
        started,
        finished if done else None,
        last_at,
        entries,
        "" if done else step_names[-1][0],
        version if kind != "purchase" else None,
    )
    if mode == "orchestration":
        for position, (name, component) in enumerate(step_names, start=1):
            last = position == len(step_names)
            step_status = "done"
            if last and status == "failed":
                step_status = "failed"
            elif last and status in ("running", "stuck"):
                step_status = "sent" if status == "running" else "waiting"
            rows.add(
                Step,
                _id(STEP_PREFIX, (ordinal << 4) | position),
                pid,
                position,
                name,
                component,
                step_status,
                8 if step_status == "failed" else 1,
                0,
                last_at if step_status == "waiting" else None,
                started,
                started,
                finished if step_status == "done" else None,
                {},
                "SMTP server did not answer" if step_status == "failed" else "",
                TRACEBACK if step_status == "failed" else "",
            )
    else:
        event_id = _id(EVENT_PREFIX, ordinal)
        rows.add(EventRecord, event_id, event_name, 1, "integration", pid, cid, {}, started)
        for index, (listener, component) in enumerate(listeners):
            last = index == len(listeners) - 1
            delivery_status = "done"
            if last and status == "failed":
                delivery_status = "dead"
            elif last and status in ("running", "stuck"):
                delivery_status = "sent"
            rows.add(
                Delivery,
                _id(DELIVERY_PREFIX, (ordinal << 4) | index),
                event_id,
                pid,
                listener,
                component,
                delivery_status,
                8 if delivery_status == "dead" else 0,
                1,
                0,
                None,
                started,
                started,
                finished if delivery_status == "done" else None,
                False,
                "SMTP server did not answer" if delivery_status == "dead" else "",
                TRACEBACK if delivery_status == "dead" else "",
            )


def _write(rows: Rows) -> None:
    for model, tuples in rows.by_model.items():
        if not tuples:
            continue
        names = Rows.columns[model]
        if connection.vendor == "postgresql":
            _copy(model, names, tuples)
        else:
            # auto_now_add fields take the load's time here: bulk_create sets them.
            model._default_manager.bulk_create(
                [model(**dict(zip(names, values, strict=True))) for values in tuples],
                batch_size=1000,
            )


def _copy(model: type[models.Model], names: Iterable[str], tuples: list[tuple[Any, ...]]) -> None:
    fields: list[models.Field[Any, Any]] = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)
        fields.append(field)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    as_json = [isinstance(f, models.JSONField) for f in fields]
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3's own cursor under Django's wrapper
        statement = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        with raw.copy(statement) as copy:
            for values in tuples:
                copy.write_row(
                    [
                        json.dumps(v) if flag and v is not None else v
                        for v, flag in zip(values, as_json, strict=True)
                    ]
                )


class Command(BaseCommand):
    help = "Load fictitious clients, processes and trace entries for measuring at scale."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--clients", type=int, default=100_000)
        parser.add_argument("--processes", type=int, default=None, help="default: 2 per client")
        parser.add_argument(
            "--trace-entries", type=int, default=None, help="default: 10 per process"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clients = options["clients"]
        processes = options["processes"] or clients * 2
        trace_entries = options["trace_entries"] or processes * 10
        if clients < 1 or processes < clients or trace_entries < processes:
            raise CommandError(
                "need clients ≥ 1, processes ≥ clients (each has its registration) and "
                "trace entries ≥ processes"
            )
        shape = Shape(clients, processes, trace_entries)
        loaded = Client.objects.filter(email__endswith=f"@{EMAIL_DOMAIN}").count()
        if loaded >= clients:
            self.stdout.write(f"{loaded} scale clients already loaded; nothing to do")
            return
        if loaded and Process.objects.filter(
            id__gte=process_id(0), id__lt=process_id(shape.first_process(loaded))
        ).count() != shape.first_process(loaded):
            raise CommandError(
                f"{loaded} scale clients were loaded with other proportions; load into a fresh "
                "database"
            )
        started = time.perf_counter()
        written = 0
        for batch_start in range(loaded, clients, BATCH_CLIENTS):
            rows = Rows()
            for number in range(batch_start, min(batch_start + BATCH_CLIENTS, clients)):
                client_rows(number, shape, rows)
            with transaction.atomic():
                _write(rows)
            written += rows.count()
            if options["verbosity"] > 1:
                self.stdout.write(f"  clients {batch_start + BATCH_CLIENTS:>8} rows {written:>9}")
        tally.tally_fold()  # one row per key, as the scheduler keeps them
        if connection.vendor == "postgresql":
            # As autovacuum leaves a table in service: statistics, and a visibility map that
            # lets index-only scans skip the rows
            # (VACUUM cannot run inside a transaction: a caller's keeps the statistics only).
            # The tally's triggers wrote a row per process loaded and the fold deleted them: a
            # tally in service holds a few hundred rows, not the megabytes of dead ones that every
            # count on the dashboard would read through (3 ms at 200,000 processes), so it is
            # rewritten at its size.
            statements = ["VACUUM FULL integration_processtally", "VACUUM (ANALYZE)"]
            with connection.cursor() as cursor:
                for statement in ["ANALYZE"] if connection.in_atomic_block else statements:
                    cursor.execute(statement)
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"loaded clients {loaded}→{clients}, processes {shape.first_process(loaded)}→"
            f"{processes}, trace entries {shape.entries_before(shape.first_process(loaded))}→"
            f"{trace_entries}: {written} rows in {seconds:.1f} s"
        )
