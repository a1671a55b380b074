"""Releases: what ``get()`` does with a result (or a private tensor) you may not download yet.

``get()`` files a ``release`` request (the Node computes its privacy cost and fingerprint) or finds the one you
already filed; if it is approved, the artifact is downloaded from ``/releases/{id}/data`` and checked against
its sha256. Otherwise ``ReleaseNotApproved`` names the request, its state and the reason (an auto-denial says
why: over your budget, a dataset's cap, not differentially private). ``get(wait=True)`` waits for the
officer's decision first.

>>> try:
...     weights = result.get()
... except ReleaseNotApproved as pending:
...     print(pending.request_id, pending.state, pending.reason)
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from gridctl.sdk.errors import Conflict, GridctlError
from gridctl.sdk.http import Http, raise_for_error
from gridctl.sdk.transfer import SHA256_HEADER

Json = dict[str, Any]
RELEASED = ("approved", "auto_approved")
DEFAULT_REASON = "release requested with get()"


class ReleaseNotApproved(Conflict):
    """``get()`` on something whose release is not approved: ``request_id``, ``state`` and ``reason``."""

    def __init__(self, request: Json) -> None:
        self.request = request
        note = request.get("decision_note")
        state = request.get("state")
        cost = (request.get("payload") or {}).get("epsilon")
        if state == "pending":
            why = "waiting for an officer's decision" + ("" if cost is None else f" (its cost: ε {cost:.4g})")
        else:
            why = note or "no reason given"
        super().__init__("release_not_approved",
                         f"release request {request['id']} for {request.get('target_type')} "
                         f"{request.get('target_id')} is {state}: {why}", status=409,
                         details={"request_id": request["id"], "state": state, "reason": note})

    @property
    def request_id(self) -> int:
        return int(self.request["id"])

    @property
    def state(self) -> str:
        return str(self.request.get("state"))

    @property
    def reason(self) -> str | None:
        return self.request.get("decision_note")


def wait_for_decision(http: Http, request_id: int, timeout: float | None = None, *, poll: float = 1.0) -> Json:
    """Poll a request until it leaves ``pending`` (or ``timeout`` seconds pass: GridctlError ``timeout``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        request: Json = http.get(f"/requests/{request_id}")
        if request.get("state") != "pending":
            return request
        if deadline is not None and time.monotonic() >= deadline:
            raise GridctlError("timeout", f"request {request_id} is still pending after {timeout:g} s",
                               details={"request_id": request_id, "state": "pending"})
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))


def file_or_find(http: Http, *, target_type: str, target_id: int, reason: str | None = None) -> Json:
    """Your release request for this target: a new one, or the pending or approved one you already have."""
    try:
        return http.post("/requests", json={"kind": "release", "target_type": target_type, "target_id": target_id,
                                            "reason": reason or DEFAULT_REASON})
    except Conflict as exc:
        existing = exc.details.get("request_id") if isinstance(exc.details, dict) else None
        if existing is None:
            raise
        return http.get(f"/requests/{existing}")


def download(http: Http, request: Json) -> bytes:
    """The released artifact's bytes, checked against the sha256 the Node sends with them (the officer's
    fingerprint is an HMAC under the Node's secret, which the requester cannot check)."""
    response = http.client.get(f"/releases/{request['id']}/data")
    raise_for_error(response)
    blob = response.content
    expected = response.headers.get(SHA256_HEADER)
    if expected and hashlib.sha256(blob).hexdigest() != expected:
        raise GridctlError("integrity", f"release {request['id']} does not match its sha256")
    return blob


def fetch(http: Http, *, target_type: str, target_id: int, wait: bool = False, timeout: float | None = None,
          reason: str | None = None, poll: float = 1.0) -> bytes:
    """File or find the release request, optionally wait for the decision, and download if approved."""
    request = file_or_find(http, target_type=target_type, target_id=target_id, reason=reason)
    if request.get("state") == "pending" and wait:
        request = wait_for_decision(http, int(request["id"]), timeout, poll=poll)
    if request.get("state") not in RELEASED:
        raise ReleaseNotApproved(request)
    return download(http, request)
