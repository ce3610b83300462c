"""PostgreSQL's pg_trgm, for the client search indexes (SQLite keeps a plain scan)."""

import logging

from django.db import DatabaseError, transaction

logger = logging.getLogger(__name__)


def available(schema_editor) -> bool:
    """Whether trigram indexes can be made here: PostgreSQL with the right to create pg_trgm.
    Without it the indexes are skipped, with a warning: search still works, only slower."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return False
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm is not available: client search stays a plain scan")
        return False
    return True
