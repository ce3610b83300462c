"""What an unreachable database looks like, and how long we ask callers to wait.

Every wait on PostgreSQL is bounded (connect, pool, lock and statement timeouts in config/env.py);
once one runs out, Django raises OperationalError or InterfaceError. Those answer 503 with
Retry-After, to the shop as problem+json (shop_api/middleware.py) and to people as a plain page
(common/middleware.py), never as a 500 with a traceback.
"""

from __future__ import annotations

from django import db

RETRY_AFTER_SECONDS = 5

_DATABASE_ERRORS: tuple[type[BaseException], ...] = (db.OperationalError, db.InterfaceError)
try:  # psycopg's own errors (the pool's PoolTimeout among them), should one escape Django's wrap
    import psycopg

    _DATABASE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - SQLite-only installations
    pass


def database_unavailable(error: BaseException | None) -> bool:
    """The database could not be reached, or gave up waiting (lock, statement, pool timeouts)."""
    return isinstance(error, _DATABASE_ERRORS)
