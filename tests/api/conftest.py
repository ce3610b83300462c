"""The shop API as the shop sees it: a client with a bearer token, answers read as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from shop_api.auth import IssuedToken, token_issue
from tests.support import flows, processes

# The integration modes every contract test runs in.
MODES = ["orchestration", "choreography"]


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


class Shop:
    """An HTTP client of the shop API (in-process), holding one token."""

    def __init__(self, issued: IssuedToken | None = None, *, authorization: str | None = None):
        self.issued = issued
        self.client = Client()
        self.authorization = authorization or (f"Bearer {issued.raw}" if issued else "")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        key: str | None = None,
        **extra: Any,
    ) -> Answer:
        headers = dict(extra)
        if self.authorization:
            headers["HTTP_AUTHORIZATION"] = self.authorization
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        response = self.client.generic(method, path, data, content_type=content_type, **headers)
        return _answer(response)

    def get(self, path: str, **extra: Any) -> Answer:
        return self.request("GET", path, **extra)

    def post(self, path: str, body: Any = None, **options: Any) -> Answer:
        return self.request("POST", path, body, **options)

    def patch(self, path: str, body: Any = None, **options: Any) -> Answer:
        return self.request("PATCH", path, body, **options)


def _answer(response: Any) -> Answer:
    content = b"".join(response) if response.streaming else response.content
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = content.decode(errors="replace")
    return Answer(response.status_code, body, {k: v for k, v in response.items()})


def issue(name: str, **options: Any) -> IssuedToken:
    return token_issue(name=name, **options)


@pytest.fixture
def shop(db: Any) -> Shop:
    return Shop(issue("shop"))


@pytest.fixture
def other_shop(db: Any) -> Shop:
    return Shop(issue("other-shop"))


@pytest.fixture(scope="session")
def web(child_env: dict[str, str]) -> Iterator[str]:
    """A web process as `make web` runs it (no rate limit: generated requests come fast)."""
    port = processes.free_port()
    server = processes.start_web(port, {**child_env, "API_RATE_LIMIT": "0"})
    base = f"http://127.0.0.1:{port}"
    with processes.running(server):
        processes.wait_for_http(f"{base}/healthz", server)
        yield base


@pytest.fixture(scope="module")
def workers(child_env: dict[str, str]) -> Iterator[processes.Process]:
    """One worker for every component queue (the `make run` shape), for the module's tests."""
    worker = flows.start_workers(flows.ALL, child_env)
    yield worker
    worker.stop()
