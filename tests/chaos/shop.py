"""The online shop as the chaos suite plays it: real HTTP to a real web process, every answer
timed, and requests sent all at once from threads."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    seconds: float

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]

    @property
    def retry_after(self) -> str | None:
        return self.headers.get("retry-after")


class Shop:
    """An HTTP client of the shop API holding one token."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token

    def request(
        self, method: str, path: str, payload: Any = None, *, key: str | None = None
    ) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, found = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, found = error.code, error.read(), error.headers
        seconds = time.monotonic() - started
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        return Answer(status, body, {k.lower(): v for k, v in found.items()}, seconds)

    def register(self, person: dict[str, Any], *, key: str | None = None) -> Answer:
        return self.request("POST", "/api/v1/clients/", person, key=key)

    def change(self, client_id: str, changes: dict[str, Any]) -> Answer:
        return self.request("PATCH", f"/api/v1/clients/{client_id}/", changes)

    def erase(self, client_id: str) -> Answer:
        return self.request("POST", f"/api/v1/clients/{client_id}/erasure/")

    def details(self, client_id: str) -> Answer:
        return self.request("GET", f"/api/v1/clients/{client_id}/")

    def process(self, process_id: str) -> Answer:
        return self.request("GET", f"/api/v1/processes/{process_id}/")


def all_at_once(calls: list[Callable[[], Answer]]) -> list[Answer]:
    """Run the calls from as many threads, released together; answers in the calls' order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], Answer]) -> Answer:
        barrier.wait(timeout=30)
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(released, calls))


def person(tag: str, *, consent: bool = False) -> dict[str, Any]:
    """A registration with values found nowhere else, so that a search of the database for them
    finds only what belongs to this person."""
    unique = uuid.uuid4().hex[:10]
    return {
        "email": f"{tag}.{unique}@chaos.example.com",
        "first_name": f"Ottoline{unique}",
        "last_name": f"Farthingale{unique}",
        "phone": "+44 20 7946 0000",
        "company": f"Quillworks {unique}",
        "marketing_consent": consent,
    }
