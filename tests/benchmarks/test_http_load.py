"""The load generator against a tiny server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import http_load


class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the servers under test

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_every_job_is_sent_over_the_given_connections_and_timed(server: str) -> None:
    jobs = [http_load.call("GET", "/ping") for _ in range(40)]

    result = http_load.load("ping", server, jobs, concurrency=4, time_limit=10)

    assert result.count == 40
    assert result.statuses == [200] * 40
    assert result.bodies[0] == b'{"ok": true}'
    assert 0 < result.percentile(50) <= result.percentile(99)
    assert result.per_second > 0


def test_only_loopback_servers_are_loaded() -> None:
    with pytest.raises(SystemExit):
        http_load.load("far", "http://192.0.2.1:80", [], concurrency=1)
