"""The consumer's side of exactly-once: a message is done when its processed record exists,
written in the transaction of its effect (DESIGN.md rules 2 and 4)."""

from __future__ import annotations

from uuid import UUID

from django.db import connection
from django.utils import timezone

from common import plain_sql
from integration.models import ProcessedMessage


def processed_claim(*, message_id: UUID, consumer: str) -> bool:
    """Write the processed record; False when another copy already did (its transaction won).
    One INSERT … ON CONFLICT DO NOTHING: the unique index decides, with no savepoint (a
    concurrent copy waits on the index until the winner's transaction ends)."""
    meta = ProcessedMessage._meta
    fields = {field.name: field for field in meta.concrete_fields}
    values = [
        fields["message_id"].get_db_prep_value(message_id, connection),
        consumer,
        fields["processed_at"].get_db_prep_value(timezone.now(), connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} (message_id, consumer, processed_at) "
            "VALUES (%s, %s, %s) ON CONFLICT (message_id, consumer) DO NOTHING RETURNING 1",
            values,
        )
        return cursor.fetchone() is not None


def processed_already(*, message_id: UUID, consumer: str) -> bool:
    """Whether the processed record is written (read on every email step, in plain SQL)."""
    key = ProcessedMessage._meta.get_field("message_id").get_db_prep_value(message_id, connection)
    return (
        plain_sql.fetch_one(
            f"SELECT 1 FROM {ProcessedMessage._meta.db_table} "
            "WHERE message_id = %s AND consumer = %s LIMIT 1",
            [key, consumer],
        )
        is not None
    )
