"""Client search in one column: the searched fields joined, kept by the database, with one
trigram index on PostgreSQL. Four indexes OR-ed together lost to a scan of every client in the
planner's estimate (upper() over four columns costs far more than it reckons): 100-250 ms at
100,000 clients, against about 1 ms for the one index."""

import django.db.models.functions.text
from django.db import migrations, models

from crm.migrations import _trigram as trigram

SEARCHED_FIELDS = ("first_name", "last_name", "email", "company")


def create(apps, schema_editor):
    if not trigram.available(schema_editor):
        return
    for field in SEARCHED_FIELDS:
        schema_editor.execute(f"DROP INDEX IF EXISTS crm_client_{field}_trgm")
    # The expression Django's icontains compares: UPPER(<column>::text) LIKE UPPER(%s).
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS crm_client_search_trgm ON crm_client "
        "USING gin ((UPPER(search_text::text)) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS crm_client_search_trgm")
    for field in SEARCHED_FIELDS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS crm_client_{field}_trgm ON crm_client "
            f"USING gin ((UPPER({field}::text)) gin_trgm_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_client_search_trigram")]

    operations = [
        migrations.AddField(
            model_name="client",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Concat(
                    "first_name",
                    models.Value(" "),
                    "last_name",
                    models.Value(" "),
                    "email",
                    models.Value(" "),
                    "company",
                    output_field=models.TextField(),
                ),
                output_field=models.TextField(),
            ),
        ),
        migrations.RunPython(create, drop),
    ]
