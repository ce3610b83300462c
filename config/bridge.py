"""HTTP from the ASGI server to Django's WSGI application: one thread hop a request.

a2wsgi runs the application in its thread pool, but every piece of the exchange crosses between
the event loop and that thread on its own: the thread reads the request body by asking the loop
for it, and hands back the response's start, each chunk of its body and its end one at a time,
waiting each time for the loop to take it. Each crossing wakes both sides; for a small API
request they cost about as much as the server's own parsing.

Here, a request body that is announced and small (or absent) is read on the event loop before
the thread starts, and a response that is not streamed (Django's `streaming` is false: every API
answer and page) comes back whole as the thread's result and is sent from the loop. Bodies of
unknown or large size and streamed responses (CSV exports, static files) still go piece by piece,
as a2wsgi sends them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Iterable
from typing import Any

from a2wsgi.wsgi import Body, WSGIMiddleware, WSGIResponder, build_environ

# Bodies up to this size are read whole before the application runs (Django refuses bigger JSON
# bodies anyway, DATA_UPLOAD_MAX_MEMORY_SIZE; those keep being read on demand, and refused).
SMALL_BODY = 64 * 1024

Message = dict[str, Any]


class WSGIBridge(WSGIMiddleware):
    """a2wsgi's WSGIMiddleware with the responder below for HTTP."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        responder = WholeResponder(self.app, self.executor, self.send_queue_size)
        await responder(scope, receive, send)


class WholeResponder(WSGIResponder):
    """Runs the application once in the pool; a whole response is sent from the event loop."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.asgi_send = send
        body = await read_small_body(self.loop, scope, receive)
        environ = build_environ(scope, body)
        context = contextvars.copy_context()
        whole = await self.loop.run_in_executor(
            self.executor, functools.partial(context.run, self.respond, environ)
        )
        if whole is not None:
            start, content = whole
            await send(start)
            await send({"type": "http.response.body", "body": content, "more_body": False})
        if self.exc_info is not None:  # as a2wsgi: the application said it failed
            raise self.exc_info[0].with_traceback(self.exc_info[1], self.exc_info[2])

    # --- in the pool's thread -------------------------------------------------------------

    def respond(self, environ: Any) -> tuple[Message, bytes] | None:
        """The whole response (start, body) when it is not streamed; None once a streamed one has
        been sent through the loop, piece by piece."""
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.written: list[bytes] = []
        iterable = self.app(environ, self.start_response)
        try:
            if getattr(iterable, "streaming", True) is False:  # a Django response, not streamed
                return self._start(), b"".join([*self.written, *iterable])
            self._stream(iterable)
            return None
        finally:
            getattr(iterable, "close", lambda: None)()

    def start_response(self, status: str, response_headers: Any, exc_info: Any = None) -> Any:
        self.exc_info = exc_info
        self.status = int(status.split(" ", 1)[0])
        self.headers = [
            (name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
            for name, value in response_headers
        ]
        return self.written.append  # WSGI's write(): its chunks go before the iterable's

    def _start(self) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.headers}

    def _stream(self, iterable: Iterable[bytes]) -> None:
        self._send_from_thread(self._start())
        for chunk in [*self.written, *iterable]:
            self._send_from_thread({"type": "http.response.body", "body": chunk, "more_body": True})
        self._send_from_thread({"type": "http.response.body", "body": b"", "more_body": False})

    def _send_from_thread(self, message: Message) -> None:
        """Wait for the loop to send it: a slow client holds the thread, as a2wsgi's queue does."""
        asyncio.run_coroutine_threadsafe(self.asgi_send(message), self.loop).result()


async def read_small_body(loop: asyncio.AbstractEventLoop, scope: Any, receive: Any) -> Body:
    """The request body for the application: read now when it is announced and small (or there
    is none), else a2wsgi's body, read from the thread as the application asks for it."""
    body = Body(loop, receive)
    length = _announced_length(scope)
    if length is None or length > SMALL_BODY:
        return body
    while length:  # an absent or empty body is not waited for
        message = await receive()
        body.buffer.extend(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body._has_more = False
    return body


def _announced_length(scope: Any) -> int | None:
    """Content-Length as a number, 0 when the request has no body, None when its size is not
    known before reading (chunked) or the header is not a number."""
    length: int | None = 0
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length if length is None or length >= 0 else None
