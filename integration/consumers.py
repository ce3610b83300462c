"""Websocket consumers. Only signed-in staff may connect."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import JsonWebsocketConsumer


class StaffConsumer(JsonWebsocketConsumer):
    def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            self.close(code=4403)
            return
        self.accept()


class PingConsumer(StaffConsumer):
    """Answers each message with `pong`: lets operators and tests see the websocket path work."""

    def receive_json(self, content: Any, **kwargs: Any) -> None:
        self.send_json({"type": "pong", "echo": content})
