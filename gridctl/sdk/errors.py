"""Errors the SDK raises. ``code`` is the Node's stable error code; the CLI maps it to an exit code."""

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


class ConnectionFailed(GridctlError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__("connection_failed", f"cannot reach {url}: {reason}")


class NotConfigured(GridctlError):
    def __init__(self, message: str) -> None:
        super().__init__("not_configured", message)
