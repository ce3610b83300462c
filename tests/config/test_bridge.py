"""The HTTP bridge from the ASGI server to the WSGI application (config/bridge.py): a response
that is not streamed comes back whole and is sent from the event loop; a streamed one goes piece by
piece; a small announced body is read before the application runs, others as it asks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpResponse, StreamingHttpResponse

from config import bridge

Message = dict[str, Any]


def scope(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Message:
    return {
        "type": "http",
        "method": method,
        "path": "/x/",
        "query_string": b"",
        "http_version": "1.1",
        "headers": headers or [],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5555),
    }


def serve(
    app: Callable[..., Any], request: Message, incoming: list[Message]
) -> tuple[list[Message], list[Message]]:
    """Run one request through the bridge: (messages sent, messages received)."""
    sent: list[Message] = []
    received: list[Message] = []

    async def receive() -> Message:
        message = incoming.pop(0) if incoming else {"type": "http.disconnect"}
        received.append(message)
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(bridge.WSGIBridge(app, workers=2)(request, receive, send))
    return sent, received


def django_app(response: Callable[[Any], Any], seen: list[bytes] | None = None) -> Any:
    """A WSGI application that answers as Django's handler does: the response is the iterable."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if seen is not None:
            seen.append(environ["wsgi.input"].read())
        answer = response(environ)
        start_response(f"{answer.status_code} OK", list(answer.items()))
        return answer

    return app


@pytest.fixture
def crossings(monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """What the application's thread hands to the loop one piece at a time."""
    handed: list[Message] = []
    original = bridge.WholeResponder._send_from_thread

    def counted(self: bridge.WholeResponder, message: Message) -> None:
        handed.append(message)
        original(self, message)

    monkeypatch.setattr(bridge.WholeResponder, "_send_from_thread", counted)
    return handed


def test_a_response_not_streamed_is_sent_whole_from_the_loop(crossings: list[Message]) -> None:
    app = django_app(lambda environ: HttpResponse(b"hello", status=201, headers={"X-A": "1"}))

    sent, received = serve(app, scope(), [])

    assert sent == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-a", b"1"), (b"content-type", b"text/html; charset=utf-8")],
        },
        {"type": "http.response.body", "body": b"hello", "more_body": False},
    ]
    assert crossings == []  # nothing handed over piece by piece
    assert received == []  # a request without a body is not waited for


def test_a_streamed_response_goes_piece_by_piece(crossings: list[Message]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a,b\n"
        yield b"1,2\n"

    app = django_app(lambda environ: StreamingHttpResponse(chunks(), content_type="text/csv"))

    sent, _ = serve(app, scope(), [])

    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 3]
    assert [m.get("body") for m in sent[1:]] == [b"a,b\n", b"1,2\n", b""]
    assert [m.get("more_body") for m in sent[1:]] == [True, True, False]
    assert crossings == sent


def test_a_small_announced_body_is_read_before_the_application_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def from_the_thread(self: Any) -> bytes:
        if self._has_more:
            raise AssertionError("the body was read from the application's thread")
        return b""

    monkeypatch.setattr(bridge.Body, "_receive_more_data", from_the_thread)
    seen: list[bytes] = []
    app = django_app(lambda environ: HttpResponse(b"ok"), seen)
    request = scope("POST", [(b"content-length", b"11")])
    parts = [
        {"type": "http.request", "body": b"hello ", "more_body": True},
        {"type": "http.request", "body": b"world", "more_body": False},
    ]

    sent, received = serve(app, request, parts)

    assert seen == [b"hello world"]
    assert len(received) == 2
    assert sent[-1] == {"type": "http.response.body", "body": b"ok", "more_body": False}


@pytest.mark.parametrize(
    "headers",
    [
        [(b"transfer-encoding", b"chunked")],
        [(b"content-length", str(bridge.SMALL_BODY + 1).encode())],
        [(b"content-length", b"many")],
    ],
    ids=["chunked", "large", "not a number"],
)
def test_a_body_of_unknown_or_large_size_is_read_as_the_application_asks(
    headers: list[tuple[bytes, bytes]],
) -> None:
    seen: list[bytes] = []
    app = django_app(lambda environ: HttpResponse(b"ok"), seen)
    parts = [
        {"type": "http.request", "body": b"big ", "more_body": True},
        {"type": "http.request", "body": b"body", "more_body": False},
    ]

    sent, received = serve(app, scope("POST", headers), parts)

    assert seen == [b"big body"]
    assert len(received) == 2
    assert sent[0]["status"] == 200


def test_a_client_gone_while_its_body_is_read_leaves_the_body_as_it_came() -> None:
    seen: list[bytes] = []
    app = django_app(lambda environ: HttpResponse(b"ok"), seen)
    request = scope("POST", [(b"content-length", b"100")])

    serve(app, request, [{"type": "http.request", "body": b"part", "more_body": True}])

    assert seen == [b"part"]
