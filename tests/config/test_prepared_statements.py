"""On PostgreSQL, a statement run often is prepared on its connection (config/env.py): the
database then skips parsing and planning it each time. psycopg prepares a statement at its run
after the fifth."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from common import plain_sql
from crm.models import Client

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db]


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_once_it_has_run_five_times() -> None:
    def read() -> None:
        with pytest.raises(Client.DoesNotExist):
            plain_sql.get(Client, uuid.uuid4())

    for _ in range(5):
        read()
    assert not [sql for sql in prepared() if '"crm_client"' in sql]

    read()

    statements = [sql for sql in prepared() if '"crm_client"' in sql]
    assert len(statements) == 1
    assert statements[0].startswith("SELECT") and "$1" in statements[0]
