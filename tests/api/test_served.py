"""What only a served web process shows (uvicorn, a2wsgi, real sockets): bodies too large,
announced or chunked, and paths without their trailing slash in debug mode."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from shop_api.auth import token_issue

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}


@pytest.fixture
def headers() -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token_issue(name='shop').raw}",
        "Content-Type": "application/json",
    }


def send(web: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, str, Any]:
    """(status, content type, JSON body); `body` may be an iterator of chunks (sent chunked)."""
    address = urlsplit(web)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.request(
            "POST", path, body=body, headers=headers, encode_chunked=not isinstance(body, bytes)
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), json.loads(response.read())
    finally:
        connection.close()


def chunks(total: int, size: int = 64 * 1024) -> Any:
    yield b'{"email": "'
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size
    yield b'"}'


def test_a_10_mb_body_is_413(web: str, headers: dict[str, str]) -> None:
    body = json.dumps({**ADA, "pad": "x" * 10 * 1024 * 1024}).encode()

    status, content_type, problem = send(web, "/api/v1/clients/", body, headers)

    assert (status, content_type, problem["status"]) == (413, "application/problem+json", 413)


def test_a_chunked_body_over_1_mib_is_413(web: str, headers: dict[str, str]) -> None:
    status, content_type, problem = send(web, "/api/v1/clients/", chunks(2 * 1024 * 1024), headers)

    assert (status, content_type, problem["title"]) == (
        413,
        "application/problem+json",
        "Request body too large",
    )


def test_a_chunked_body_within_1_mib_is_read(web: str, headers: dict[str, str]) -> None:
    body = iter([b'{"email": "ada@example.com",', b' "first_name": "Ada", "last_name": "L"}'])

    status, _, started = send(web, "/api/v1/clients/", body, headers)

    assert (status, started["kind"]) == (202, "client_registration")


def test_a_post_without_the_trailing_slash_is_served(web: str, headers: dict[str, str]) -> None:
    status, _, started = send(web, "/api/v1/clients", json.dumps(ADA).encode(), headers)

    assert (status, started["status"]) == (202, "running")


def test_an_unknown_api_path_is_a_problem_not_a_page(web: str, headers: dict[str, str]) -> None:
    status, content_type, problem = send(web, "/api/v1/nothing/here/", b"{}", headers)

    assert (status, content_type, problem["status"]) == (404, "application/problem+json", 404)
