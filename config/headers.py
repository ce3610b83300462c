"""Response header names as HTTP clients expect to read them.

ASGI carries header names lower-cased, and a2wsgi lower-cases Django's. HTTP says names are
case-insensitive, but clients that copy headers into a plain dict look up `Location` or
`Retry-After` as written in the specifications; this middleware gives them back that casing.
(uvicorn's h11 protocol writes names as given; its httptools protocol lower-cases them again.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

SPECIAL = {
    b"www-authenticate": b"WWW-Authenticate",
    b"etag": b"ETag",
    b"content-md5": b"Content-MD5",
    b"x-xss-protection": b"X-XSS-Protection",
}


def canonical(name: bytes) -> bytes:
    lowered = name.lower()
    return SPECIAL.get(lowered) or b"-".join(part.capitalize() for part in lowered.split(b"-"))


class CanonicalHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        async def send_canonical(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (canonical(name), value) for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_canonical)
