"""The client export for Marketing: the search's results as CSV, written row by row.

Only what a campaign needs leaves the system: names, company, the registration date, and the
email of the clients who agreed to be contacted. No phone: Marketing reaches clients by email, and
a file that leaves the app should carry no more personal data than its purpose needs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils import timezone

from integration import gateway
from integration.models import ErasedClientId

HEADER = ("id", "first_name", "last_name", "company", "email", "marketing_consent", "registered")
# The model's fields behind the header, in its order.
COLUMNS = (*HEADER[:-1], "registered_at")
# Rows fetched per round trip: memory stays bounded however many clients match.
CHUNK_SIZE = 2000
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """csv.writer writes into this and gets the line back, so nothing accumulates."""

    def write(self, value: str) -> str:
        return value


def inert(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def client_rows(*, query: str) -> Iterator[tuple[str, ...]]:
    """The clients the search finds, newest first, leaving out those being erased."""
    clients = (
        gateway.clients_search(query=query)
        .exclude(id__in=ErasedClientId.objects.values("client_id"))
        .order_by("-registered_at", "id")
        .values_list(*COLUMNS)
    )
    for client_id, first, last, company, email, consent, registered in clients.iterator(
        chunk_size=CHUNK_SIZE
    ):
        yield (
            str(client_id),
            inert(first),
            inert(last),
            inert(company),
            inert(email) if consent else "",
            "yes" if consent else "no",
            timezone.localdate(registered).isoformat(),
        )


def csv_lines(rows: Iterable[tuple[str, ...]]) -> Iterator[Any]:
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for row in rows:
        yield writer.writerow(row)
