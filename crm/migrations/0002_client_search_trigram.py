"""Client search at scale (PostgreSQL): trigram indexes on the searched fields, so that a
case-insensitive "contains" is an index scan, not a scan of every client. SQLite (the embedded
default) keeps its plain scan. Without the right to create the pg_trgm extension the indexes
are skipped, with a warning: search still works, only slower."""

from django.db import migrations

from crm.migrations import _trigram as trigram

SEARCHED_FIELDS = ("first_name", "last_name", "email", "company")


def create(apps, schema_editor):
    if not trigram.available(schema_editor):
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
