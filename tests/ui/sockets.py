"""A websocket client for consumer tests, on asgiref's communicator (Channels' own
WebsocketCommunicator lives in a package that needs daphne, which we do not run)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter

from staff.routing import websocket_urlpatterns

APP = URLRouter(websocket_urlpatterns)


class Socket(ApplicationCommunicator):
    def __init__(self, path: str, user: Any) -> None:
        parts = urlsplit(path)
        scope = {
            "type": "websocket",
            "path": parts.path,
            "query_string": parts.query.encode(),
            "headers": [],
            "subprotocols": [],
            "user": user,
        }
        super().__init__(APP, scope)

    async def connect(self, timeout: float = 2) -> tuple[bool, int | None]:
        """(accepted, close code when refused)."""
        await self.send_input({"type": "websocket.connect"})
        answer = await self.receive_output(timeout)
        return answer["type"] == "websocket.accept", answer.get("code")

    async def receive_json_from(self, timeout: float = 2) -> Any:
        message = await self.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def disconnect(self, code: int = 1000, timeout: float = 2) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)
