"""The decision webhook: a JSON POST to the node's webhook URL for every decided request, signed with
HMAC-SHA256 so the receiver can tell it came from this Node and was not replayed.

Headers: ``X-Grid-Timestamp`` (Unix seconds) and ``X-Grid-Signature: sha256=<hex>``, the HMAC-SHA256 of
``"<timestamp>.<body>"`` under the node's signing secret. A receiver recomputes it (``verify``), compares in
constant time and refuses timestamps older than a few minutes. The secret is generated at the first use and
kept owner-only (0600) in the state directory (``webhook-secret``); holders of ``edit_settings`` may rotate it
or set their own. Deliveries happen after the deciding transaction has committed (a background task), are
retried a few times and never fail the decision; outcomes are logged without the secret.

Where it may point (issue 11: no blind SSRF): ``https://`` to a public address only, unless the operator sets
``webhook_allow_private`` (then ``http://`` and private, loopback and link-local addresses are allowed too, for
a receiver inside the deployment). Checked when the URL is set (a literal address, a name such as
``localhost``) and again before every delivery on the addresses the name resolves to then; redirects are
never followed. Deliveries are rate-limited (``webhook_max_per_minute``): past it they are dropped and
logged, the decision itself stands. Only holders of ``edit_settings`` read the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grid_runtime.core.errors import InvalidInput
from grid_runtime.core.security import write_private_file
from grid_runtime.core.urls import private_host, resolves_public

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
            "fingerprint": payload.get("fingerprint"),
        },
    }


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse (422) a webhook URL this Node must not call: not https, or naming a private address or name."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("the webhook URL must be an absolute https:// URL", details={"field": "webhook_url"})
    if parts.username or parts.password:
        raise InvalidInput("the webhook URL must not carry credentials", details={"field": "webhook_url"})
    if allow_private:
        return
    if parts.scheme != "https":
        raise InvalidInput("the webhook URL must use https:// (the operator may allow http:// with "
                           "GRID_NODE_WEBHOOK_ALLOW_PRIVATE)", details={"field": "webhook_url"})
    if private := private_host(host):
        raise InvalidInput(f"the webhook URL names {private} ({host})", details={"field": "webhook_url"})


class _RateLimit:
    """At most ``per_minute`` deliveries in any sliding minute (per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[float] = []

    def allow(self, per_minute: int, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._sent = [t for t in self._sent if now - t < 60.0]
            if len(self._sent) >= per_minute:
                return False
            self._sent.append(now)
            return True


RATE_LIMIT = _RateLimit()


def deliver(url: str, secret: str, payload: dict[str, Any], *, timeout: float = 5.0, allow_private: bool = False,
            max_per_minute: int = 30) -> bool:
    """POST ``payload`` signed; retried on network errors and 5xx. True if the receiver answered 2xx.

    Refused (False, logged) if the URL is not allowed, resolves to a private address, or the rate limit is
    reached. Runs after the deciding transaction, never inside one."""
    import httpx

    try:
        check_url(url, allow_private=allow_private)
    except InvalidInput as exc:
        log.warning("webhook not delivered: %s", exc.message)
        return False
    if not allow_private and not resolves_public(url):
        log.warning("webhook not delivered: its host does not resolve to public addresses only")
        return False
    if not RATE_LIMIT.allow(max_per_minute):
        log.warning("webhook not delivered: more than %d deliveries in a minute", max_per_minute)
        return False
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    for attempt in range(1, ATTEMPTS + 1):
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
                   SIGNATURE_HEADER: sign(secret, timestamp, body), EVENT_HEADER: str(payload.get("event"))}
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
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
