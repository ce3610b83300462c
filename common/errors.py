"""The one error type of the domain, mapped to HTTP (problem details) and to form errors in one
place each. Services raise these; they never raise HTTP exceptions."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    status = 400
    title = "Invalid input"


class NotFound(ApplicationError):
    status = 404
    title = "Not found"


class Conflict(ApplicationError):
    status = 409
    title = "Conflict"


class Unavailable(ApplicationError):
    """No component can answer as asked right now; the caller may try again after
    `retry_after` seconds."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after
