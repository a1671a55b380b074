"""Errors the SDK raises. ``code`` is the Node's stable error code; the CLI maps it to an exit code.

Every error is a ``GridctlError``; the subclasses let Python callers catch one kind
(``except NotFound:``). Messages never contain a token or a password.
"""

from __future__ import annotations

from typing import Any


class GridctlError(Exception):
    """An error from the Node (``status`` is its HTTP status) or from talking to it (``status`` 0)."""

    def __init__(self, code: str, message: str, *, status: int = 0, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class Unauthorized(GridctlError):
    """Not logged in, a bad or expired token, or a wrong password (401)."""


class Forbidden(GridctlError):
    """Logged in, but the role lacks a capability, or an anti-escalation rule refused it (403)."""


class NotFound(GridctlError):
    """No such user, role, group, token or route (404)."""


class AlreadyExists(GridctlError):
    """A unique name or email is taken (409 ``already_exists``)."""


class Conflict(GridctlError):
    """The request clashes with the current state (409 ``conflict``, ``budget_exceeded``)."""


class InvalidInput(GridctlError):
    """The Node refused the input (422 ``invalid_input``, 400 ``malformed_json``, 413)."""


class RateLimited(GridctlError):
    """Too many attempts (429); ``details`` may hold ``retry_after`` seconds."""


class ServerError(GridctlError):
    """The Node failed (5xx); its log has the details."""


class ConnectionFailed(GridctlError):
    """The Node could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("connection_failed", f"cannot reach {url}: {reason}")


class NotConfigured(GridctlError):
    """No Node or no token selected (no context, no GRIDCTL_URL/GRIDCTL_TOKEN, no credentials)."""

    def __init__(self, message: str) -> None:
        super().__init__("not_configured", message)


BY_CODE: dict[str, type[GridctlError]] = {
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "already_exists": AlreadyExists,
    "conflict": Conflict,
    "budget_exceeded": Conflict,
    "invalid_input": InvalidInput,
    "malformed_json": InvalidInput,
    "payload_too_large": InvalidInput,
    "rate_limited": RateLimited,
    "internal": ServerError,
}

# When a response carries no JSON error body (a proxy, an old Node): the code its status implies.
CODE_FOR_STATUS = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                   409: "conflict", 413: "payload_too_large", 422: "invalid_input", 429: "rate_limited"}


def from_response(code: str, message: str, *, status: int, details: Any = None) -> GridctlError:
    """The most specific error class for a Node error code (or, failing that, its HTTP status)."""
    cls = BY_CODE.get(code) or BY_CODE.get(CODE_FOR_STATUS.get(status, "")) or (
        ServerError if status >= 500 else GridctlError)
    return cls(code, message, status=status, details=details)
