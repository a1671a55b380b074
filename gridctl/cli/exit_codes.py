"""Exit codes of every gridctl command (documented in docs/cli.md; a test keeps the two in step)."""

from __future__ import annotations

OK = 0
ERROR = 1  # anything not listed below
USAGE = 2  # bad options or arguments (Typer's own code for usage errors)
AUTH = 3  # not logged in, bad or expired token, wrong password
FORBIDDEN = 4  # logged in, but the role lacks the capability
NOT_FOUND = 5
CONFLICT = 6  # already exists, state conflict, budget exceeded
INVALID = 7  # the Node refused the input (validation)
SERVER = 8  # the Node failed (5xx)
CONNECTION = 9  # the Node could not be reached

BY_CODE = {
    "unauthorized": AUTH, "rate_limited": AUTH, "not_configured": AUTH,
    "forbidden": FORBIDDEN,
    "not_found": NOT_FOUND,
    "already_exists": CONFLICT, "conflict": CONFLICT, "budget_exceeded": CONFLICT,
    "invalid_input": INVALID, "malformed_json": INVALID, "payload_too_large": INVALID, "usage": USAGE,
    "internal": SERVER,
    "connection_failed": CONNECTION,
}


def for_error(code: str, status: int) -> int:
    if code in BY_CODE:
        return BY_CODE[code]
    if status >= 500:
        return SERVER
    return ERROR
