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
