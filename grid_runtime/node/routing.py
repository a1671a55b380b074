"""Names in URL paths: a route whose path holds a name (``/roles/{ref}``, ``/users/{ref}`` with an email) finds any
stored name, including one with ``/`` or ``%`` in it.

Clients send a name as one percent-encoded path segment (the SDK's ``segment``: ``ops/eu`` is ``ops%2Feu``). The
server decodes the whole path before routing, so ``/roles/ops%2Feu`` would arrive as ``/roles/ops/eu``: two
segments, matching no route (or another route). :class:`NameRoute`, the route class of the routers whose paths take
names, matches against the path as it was sent instead: each segment decoded, with ``%`` and ``/`` inside a segment
kept escaped, and decodes those two in the path parameters it hands the endpoint. A path without ``%`` matches
exactly as before; the escaped path is worked out once per request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

_SCOPE_KEY = "grid.segment_path"


def _escape(segment: str) -> str:
    return segment.replace("%", "%25").replace("/", "%2F")


def _segment_path(scope: Scope) -> str | None:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or b"%" not in raw:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    segments = [unquote(part) for part in text.split("/")]
    if "/".join(segments) != scope.get("path"):
        return None  # a path rewritten on the way (a proxy, a mount): match it as it is
    if not any("/" in segment or "%" in segment for segment in segments):
        return None  # nothing inside a segment to keep escaped: the decoded path is the same
    return "/".join(_escape(segment) for segment in segments)


def segment_path(scope: Scope) -> str | None:
    """The request's path with ``%`` and ``/`` inside each segment escaped, or ``None`` when that is the path
    itself. Worked out once per request (kept in the scope)."""
    if _SCOPE_KEY not in scope:
        scope[_SCOPE_KEY] = _segment_path(scope) if scope.get("type") == "http" else None
    found: str | None = scope[_SCOPE_KEY]
    return found


class NameRoute(APIRoute):
    """An API route matched on the path's segments as sent, so a path parameter can hold any name."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = segment_path(scope)
        if path is None:
            return super().matches(scope)
        match, child = super().matches({**scope, "path": path})
        params: dict[str, Any] | None = child.get("path_params")
        if params:
            child["path_params"] = {key: unquote(value) if key in self.param_convertors and isinstance(value, str)
                                    else value for key, value in params.items()}
        return match, child
