"""Typed errors. Services raise these; one handler turns them into JSON; the CLI maps codes to exit codes."""

from __future__ import annotations

from typing import Any


class GridError(Exception):
    """Base error with a stable ``code`` and an HTTP ``status``."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(GridError):
    code, status = "invalid_input", 422


class Unauthorized(GridError):
    code, status = "unauthorized", 401


class Forbidden(GridError):
    code, status = "forbidden", 403


class NotFound(GridError):
    code, status = "not_found", 404


class AlreadyExists(GridError):
    code, status = "already_exists", 409


class Conflict(GridError):
    code, status = "conflict", 409


class PayloadTooLarge(GridError):
    code, status = "payload_too_large", 413


class RateLimited(GridError):
    code, status = "rate_limited", 429


class BudgetExceeded(GridError):
    code, status = "budget_exceeded", 409


class Unavailable(GridError):
    code, status = "unavailable", 503
