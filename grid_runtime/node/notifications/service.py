"""The decision webhook: a JSON POST to the node's webhook URL for every decided request, signed with
HMAC-SHA256 so the receiver can tell it came from this Node and was not replayed.

Headers: ``X-Grid-Timestamp`` (Unix seconds) and ``X-Grid-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` under the node's signing secret. A receiver recomputes it (``verify``), compares in
constant time and refuses timestamps older than a few minutes. The secret is generated at the first use and
kept owner-only (0600) in the state directory (``webhook-secret``); holders of ``edit_settings`` may rotate it
or set their own. Deliveries happen after the deciding transaction has committed (a background task), are
retried a few times and never fail the decision; outcomes are logged without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from grid_runtime.core.security import write_private_file

log = logging.getLogger("grid_runtime.node.notifications")

TIMESTAMP_HEADER = "X-Grid-Timestamp"
SIGNATURE_HEADER = "X-Grid-Signature"
EVENT_HEADER = "X-Grid-Event"
SECRET_FILE = "webhook-secret"  # noqa: S105  (a file name, not a secret)
MAX_AGE_SECONDS = 300
ATTEMPTS = 3


def secret_path(state_dir: Path) -> Path:
    return state_dir / SECRET_FILE


def signing_secret(state_dir: Path) -> str:
    """The node's webhook signing secret, generated (owner-only file) if there is none yet."""
    path = secret_path(state_dir)
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    write_private_file(path, secret + "\n")
    return secret


def set_signing_secret(state_dir: Path, secret: str | None = None) -> str:
    """Replace the signing secret with ``secret`` or a new random one; returns it (shown once)."""
    value = secret or secrets.token_urlsafe(32)
    write_private_file(secret_path(state_dir), value + "\n")
    return value


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, *, timestamp: str, signature: str, body: bytes, now: float | None = None,
           max_age: int = MAX_AGE_SECONDS) -> bool:
    """For receivers: is ``signature`` this body's, under ``secret``, and is the timestamp fresh?"""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > max_age:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def decision_payload(request: Any) -> dict[str, Any]:
    """What the webhook says about a decided request (no secrets; the officer's note is included)."""
    payload = request.payload or {}
    return {
        "event": f"request.{request.state}",
        "request": {
            "id": request.id, "kind": request.kind, "state": request.state,
            "requester_id": request.requester_id, "requester_email": request.requester.email,
            "target_type": request.target_type, "target_id": request.target_id,
            "decided_by": request.decided_by, "decision_note": request.decision_note,
            "decided_at": request.decided_at.isoformat() if request.decided_at else None,
            "epsilon": payload.get("epsilon"), "non_private": payload.get("non_private"),
            "sha256": payload.get("sha256"),
        },
    }


def deliver(url: str, secret: str, payload: dict[str, Any], *, timeout: float = 5.0) -> bool:
    """POST ``payload`` signed; retried on network errors and 5xx. True if the receiver answered 2xx."""
    import httpx

    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    for attempt in range(1, ATTEMPTS + 1):
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
                   SIGNATURE_HEADER: sign(secret, timestamp, body), EVENT_HEADER: str(payload.get("event"))}
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            log.warning("webhook delivery %d/%d failed: %s", attempt, ATTEMPTS, type(exc).__name__)
        else:
            if response.is_success:
                return True
            log.warning("webhook delivery %d/%d answered %d", attempt, ATTEMPTS, response.status_code)
            if response.status_code < 500:
                return False
        time.sleep(0.2 * attempt)
    return False
