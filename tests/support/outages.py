"""Services that are not there, for unit tests of the outage bounds: a loopback port nothing
listens on (connections refused at once), and a loopback listener that accepts connections and
never answers (a paused Redis, a hung PostgreSQL), plus a Celery app whose broker is one of them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from celery import Celery
from django.conf import settings

from config import env
from tests.support.processes import free_port


def closed_port() -> int:
    """A loopback port that refuses connections (it was free a moment ago, and stays unbound)."""
    return free_port()


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts every connection and never sends a byte; yields the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                peer, _ = server.accept()
            except OSError:
                return
            held.append(peer)

    thread = threading.Thread(target=accept, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stopping.set()
        server.close()
        for peer in held:
            peer.close()
        thread.join(timeout=2)


@contextlib.contextmanager
def broker_away(kind: str) -> Iterator[Celery]:
    """A Celery app configured as the product configures it for a Redis broker at a loopback
    port that refuses (`kind="refusing"`) or never answers ("silent")."""
    with contextlib.ExitStack() as stack:
        port = closed_port() if kind == "refusing" else stack.enter_context(silent_listener())
        url = f"redis://127.0.0.1:{port}/0"
        config = env.load({"DEBUG": "1", "CELERY_BROKER_URL": url}, Path(settings.BASE_DIR))
        app = Celery("ensemble-outage", set_as_current=False)
        app.config_from_object("django.conf:settings", namespace="CELERY")
        # The write and read URLs, because Celery prefers CELERY_BROKER_URL from the environment
        # (a test run against Redis sets it) to broker_url.
        app.conf.update(
            broker_url=config.broker_url,
            broker_write_url=config.broker_url,
            broker_read_url=config.broker_url,
            broker_transport_options=config.broker_transport_options,
        )
        stack.callback(app.close)
        yield app
