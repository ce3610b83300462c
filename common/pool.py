"""The web server opens its PostgreSQL connections before it takes its first request.

Django opens the pool on the first request, and the pool then opens its connections in the
background, three at a time. A burst that arrives first waits for them, and on a busy machine past
the pool's 0.5 s: requests were answered 503 while the database was fine. Opened at start-up, every
request thread finds its connection ready. The wait is bounded (DESIGN rule 11): a database that is
down at start-up does not stop the server, whose requests answer 503 until it is back, while the
pool keeps trying in the background.
"""

from __future__ import annotations

import logging
import time

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from config.env import CONNECT_TIMEOUT

logger = logging.getLogger(__name__)

OPEN_TIMEOUT = CONNECT_TIMEOUT + 1.0  # one connection attempt to a silent server, and a margin
_POLL_SECONDS = 0.02


def open_database_pool(
    database: BaseDatabaseWrapper | None = None, *, timeout: float = OPEN_TIMEOUT
) -> bool:
    """Open the pool of `database` (the default one) and wait, at most `timeout`, until it holds
    its `min_size` connections. True once they are open, or when it keeps no pool (SQLite)."""
    pool = getattr(database or connections["default"], "pool", None)
    if pool is None:
        return True
    # Not psycopg_pool's own wait(): it closes the pool for good when its time runs out.
    pool.open(wait=False)
    deadline = time.monotonic() + timeout
    while pool.get_stats()["pool_available"] < pool.min_size:
        if time.monotonic() >= deadline:
            logger.warning(
                "database pool: %d of %d connections open after %.1f s; serving anyway "
                "(requests answer 503 until the database is reachable)",
                pool.get_stats()["pool_available"],
                pool.min_size,
                timeout,
            )
            return False
        time.sleep(_POLL_SECONDS)
    return True
