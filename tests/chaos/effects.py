"""What a fault may not change: each database effect once, each email at most once, no personal
data after an erasure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db import close_old_connections, connection

from correspondence.models import Message
from crm.models import Client, Communication
from integration.models import Process
from sales.models import CommunicationReplica, CustomerAccount, CustomerReplica
from tests.support import faults, flows

FINISH_TIMEOUT = 75


def effects_of_registration(client_id: UUID | str, email: str, mode: str) -> dict[str, int]:
    """How many rows one registration left, in each table it writes."""
    close_old_connections()
    counts = {
        "crm client with the email": Client.objects.filter(email=email).count(),
        "crm client with the id": Client.objects.filter(pk=client_id).count(),
        "crm communications": Communication.objects.filter(client_id=client_id).count(),
        "sales accounts": CustomerAccount.objects.filter(client_id=client_id).count(),
        "welcome messages": Message.objects.filter(
            client_id=client_id, template_key="welcome"
        ).count(),
    }
    if mode == "choreography":
        counts["sales customer replicas"] = CustomerReplica.objects.filter(
            client_id=client_id
        ).count()
        counts["sales communication replicas"] = CommunicationReplica.objects.filter(
            client_id=client_id
        ).count()
    return counts


def once(mode: str) -> dict[str, int]:
    names = [
        "crm client with the email",
        "crm client with the id",
        "crm communications",
        "sales accounts",
        "welcome messages",
    ]
    if mode == "choreography":
        names += ["sales customer replicas", "sales communication replicas"]
    return dict.fromkeys(names, 1)


def copies_by_message_id(smtp: faults.SmtpServer, address: str) -> Counter[str]:
    return Counter(copy.message_id for copy in smtp.copies_to(address))


def assert_sent_once(smtp: faults.SmtpServer, address: str) -> None:
    copies = copies_by_message_id(smtp, address)
    assert len(copies) == 1 and "" not in copies, f"emails to {address}: {copies}"
    assert list(copies.values()) == [1], f"emails to {address} by Message-ID: {copies}"


def assert_sent_once_but_for_the_window(smtp: faults.SmtpServer, address: str) -> None:
    """The documented window: the server accepted the email and the sender could not record
    it, so the same email (the same Message-ID) goes again — once more at most."""
    copies = copies_by_message_id(smtp, address)
    assert len(copies) == 1 and "" not in copies, f"emails to {address}: {copies}"
    assert next(iter(copies.values())) in (1, 2), f"emails to {address} by Message-ID: {copies}"


def wait_completed(process_ids: Iterable[UUID | str], timeout: float = FINISH_TIMEOUT) -> None:
    for process_id in process_ids:
        flows.wait_for_status(UUID(str(process_id)), ("completed",), timeout=timeout)


def wait_finished(process_id: UUID | str, timeout: float = FINISH_TIMEOUT) -> Process:
    return flows.wait_for_status(
        UUID(str(process_id)), ("completed", "failed", "closed"), timeout=timeout
    )


def rows_holding(values: Iterable[str]) -> dict[str, list[str]]:
    """Every row of every table of the test database whose text holds one of the values (case
    folded): the tables are read from the catalogue, so a table added tomorrow is searched too."""
    wanted = [value.lower() for value in values]
    found: dict[str, list[str]] = {}
    close_old_connections()
    with connection.cursor() as cursor:
        for table in _tables(cursor):
            quoted = connection.ops.quote_name(table)
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"SELECT t::text FROM {quoted} AS t"
                )  # the name comes from the catalogue
                rows = [row[0] for row in cursor.fetchall()]
            else:
                cursor.execute(f"SELECT * FROM {quoted}")  # the name comes from the catalogue
                rows = [repr(row) for row in cursor.fetchall()]
            hits = [row for row in rows if any(value in row.lower() for value in wanted)]
            if hits:
                found[table] = hits
    return found


def _tables(cursor: Any) -> list[str]:
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        )
    else:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [row[0] for row in cursor.fetchall()]
