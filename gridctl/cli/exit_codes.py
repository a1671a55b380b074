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


# A code the CLI does not know yet (a newer Node, a domain-specific code such as "invalid_tensor") still
# gets the exit code its HTTP status implies.
BY_STATUS = {400: INVALID, 401: AUTH, 403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 413: INVALID,
             422: INVALID, 429: AUTH}


def for_error(code: str, status: int) -> int:
    if code in BY_CODE:
        return BY_CODE[code]
    if status >= 500:
        return SERVER
    return BY_STATUS.get(status, ERROR)
