"""Exit codes of every gridctl command: the one table from error code to exit code.

``docs/cli.md``'s exit-code table is generated from ``MEANING`` and ``BY_CODE`` (``python -m gridctl.cli.docs``),
and tests/test_cli_docs.py checks both agree with what the commands do.
"""

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
DENIED = 10  # a request was filed and the Node denied it at once (auto_denied)

MEANING = {
    OK: "success",
    ERROR: "any other error: a declined confirmation, a download failing its sha256 check, a wait that timed "
           "out, a deployment that failed or asks for what its provider cannot do",
    USAGE: "usage: bad options or arguments, a malformed URL, `--yes` needed (no terminal to ask on)",
    AUTH: "auth: not logged in, no Node selected, bad or expired token, wrong password, too many attempts",
    FORBIDDEN: "forbidden: the role lacks the capability, an anti-escalation rule refused it, or your level on "
               "the data is too low",
    NOT_FOUND: "not found: no such user, role, group, token, tensor, dataset, grant, job, request or deployment",
    CONFLICT: "conflict: already exists, in use, deleting yourself, budget exceeded, a request already decided, "
              "a download target that exists",
    INVALID: "invalid input: the Node refused a value (bad email, unknown capability, too long)",
    SERVER: "server error: the Node failed (its log has the details)",
    CONNECTION: "connection error: the Node could not be reached",
    DENIED: "denied: the request was filed and denied at once (`auto_denied`, e.g. over your budget); it is "
            "printed, with the reason",
}

# The one mapping table: the error code (the Node's, or the CLI's own) -> the exit code.
BY_CODE = {
    "cancelled": ERROR, "checksum_mismatch": ERROR, "integrity": ERROR, "timeout": ERROR, "deploy_failed": ERROR,
    "unsupported": ERROR, "not_built": ERROR,
    "usage": USAGE,
    "unauthorized": AUTH, "rate_limited": AUTH, "not_configured": AUTH,
    "forbidden": FORBIDDEN,
    "not_found": NOT_FOUND,
    "already_exists": CONFLICT, "conflict": CONFLICT, "budget_exceeded": CONFLICT,
    "invalid_input": INVALID, "malformed_json": INVALID, "payload_too_large": INVALID,
    "internal": SERVER,
    "connection_failed": CONNECTION,
    "request_denied": DENIED,
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
