"""Client search at scale (PostgreSQL): trigram indexes on the searched fields, so that a
case-insensitive "contains" is an index scan, not a scan of every client. SQLite (the embedded
default) keeps its plain scan. Without the right to create the pg_trgm extension the indexes
are skipped, with a warning: search still works, only slower."""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

SEARCHED_FIELDS = ("first_name", "last_name", "email", "company")


def create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm is not available: client search stays a plain scan")
        return
    for field in SEARCHED_FIELDS:
        # The expression Django's icontains compares: UPPER(<column>::text) LIKE UPPER(%s).
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS crm_client_{field}_trgm ON crm_client "
            f"USING gin ((UPPER({field}::text)) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for field in SEARCHED_FIELDS:
        schema_editor.execute(f"DROP INDEX IF EXISTS crm_client_{field}_trgm")


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
