"""Kept process counts (ProcessTally), written by triggers on integration_process, filled from
the processes already there. PostgreSQL: one PL/pgSQL function behind three triggers; SQLite:
three triggers. An update fires only when a tallied column changes."""

from django.db import migrations, models

# A frozen copy of integration.models.TALLY_DURATION_BUCKETS (a test keeps them equal).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
TALLIED = ("kind", "mode", "status", "started_at", "finished_at")
COLUMNS = "kind, mode, status, bucket, processes, seconds"


def seconds_sql(vendor: str, row: str) -> str:
    """Seconds from start to finish of `row` (OLD, NEW or the table), NULL while unfinished."""
    if vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({row}.finished_at - {row}.started_at))::double precision"
    return f"((julianday({row}.finished_at) - julianday({row}.started_at)) * 86400.0)"


def bucket_sql(vendor: str, row: str) -> str:
    seconds = seconds_sql(vendor, row)
    bounds = " ".join(
        f"WHEN {seconds} <= {bound} THEN {index}" for index, bound in enumerate(BUCKETS)
    )
    return f"CASE WHEN {row}.finished_at IS NULL THEN -1 {bounds} ELSE {len(BUCKETS)} END"


def values_sql(vendor: str, row: str, sign: int) -> str:
    seconds = seconds_sql(vendor, row)
    return (
        f"({row}.kind, {row}.mode, {row}.status, {bucket_sql(vendor, row)}, {sign}, "
        f"{sign} * COALESCE({seconds}, 0))"
    )


def changed_sql(vendor: str) -> str:
    differs = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"  # both NULL-safe
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in TALLIED)


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    insert = f"INSERT INTO integration_processtally ({COLUMNS}) VALUES"
    if vendor == "postgresql":
        run(
            "CREATE OR REPLACE FUNCTION integration_process_tally() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP <> 'INSERT' THEN {insert} {values_sql(vendor, 'OLD', -1)}; END IF; "
            f"IF TG_OP <> 'DELETE' THEN {insert} {values_sql(vendor, 'NEW', 1)}; END IF; "
            "RETURN NULL; END $$"
        )
        function = "FOR EACH ROW EXECUTE FUNCTION integration_process_tally()"
        run(f"CREATE TRIGGER process_tally_insert AFTER INSERT ON integration_process {function}")
        run(f"CREATE TRIGGER process_tally_delete AFTER DELETE ON integration_process {function}")
        run(
            "CREATE TRIGGER process_tally_update AFTER UPDATE ON integration_process "
            f"FOR EACH ROW WHEN ({changed_sql(vendor)}) EXECUTE FUNCTION integration_process_tally()"
        )
    else:
        table = "integration_process"
        run(
            f"CREATE TRIGGER process_tally_insert AFTER INSERT ON {table} BEGIN "
            f"{insert} {values_sql(vendor, 'NEW', 1)}; END"
        )
        run(
            f"CREATE TRIGGER process_tally_delete AFTER DELETE ON {table} BEGIN "
            f"{insert} {values_sql(vendor, 'OLD', -1)}; END"
        )
        run(
            f"CREATE TRIGGER process_tally_update AFTER UPDATE ON {table} "
            f"WHEN {changed_sql(vendor)} BEGIN "
            f"{insert} {values_sql(vendor, 'OLD', -1)}; {insert} {values_sql(vendor, 'NEW', 1)}; "
            "END"
        )
    row = "integration_process"
    run(
        f"INSERT INTO integration_processtally ({COLUMNS}) "
        f"SELECT kind, mode, status, {bucket_sql(vendor, row)} AS bucket, COUNT(*), "
        f"COALESCE(SUM({seconds_sql(vendor, row)}), 0) FROM {row} "
        f"GROUP BY kind, mode, status, {bucket_sql(vendor, row)}"
    )


def drop(apps, schema_editor):
    for event in ("insert", "delete", "update"):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS process_tally_{event} ON integration_process"
            )
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS process_tally_{event}")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS integration_process_tally()")


class Migration(migrations.Migration):
    dependencies = [("integration", "0009_progress_indexes")]

    operations = [
        migrations.CreateModel(
            name="ProcessTally",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("kind", models.CharField(max_length=30)),
                ("mode", models.CharField(max_length=20)),
                ("status", models.CharField(max_length=10)),
                ("bucket", models.SmallIntegerField()),
                ("processes", models.BigIntegerField()),
                ("seconds", models.FloatField()),
            ],
        ),
        migrations.RunPython(create, drop),
    ]
