"""Request-body limits, checked while the body is read and before anything parses it (ASGI middleware).

- Every route but the streaming uploads takes at most ``max_body_bytes`` (1 MiB by default): a declared
  ``Content-Length`` above it is refused at once, without reading a byte; a chunked body is refused as soon as
  it passes the limit. Either way 413 ``payload_too_large`` with the usual ``{code, message, details}``, and
  the Node never holds more than the limit of a body in memory.
- Every body, uploads included, must keep arriving: a pause longer than ``body_read_timeout_seconds``, or an
  average below ``min_body_rate_bytes`` per second once that long has passed, ends the request with 408
  ``request_timeout``. A slow client holds a connection, never a database session (``deps.released_session``).

- No text may hold the NUL character (U+0000), which PostgreSQL's text columns refuse: a path or query string with
  ``%00``, or a JSON body with a ``\u0000`` escape, is refused with 422 ``invalid_input`` on every database alike.

A streaming route is one that declares its raw body in the OpenAPI document (``openapi_extra`` with a
``requestBody`` that is not JSON): it reads ``request.stream()`` itself and applies its own size limit
(``max_upload_bytes``) to what it stores.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grid_runtime.core.errors import GridError


class BodySettings(Protocol):
    """The settings these limits read (the Node's and the Network's both have them)."""

    max_body_bytes: int
    body_read_timeout_seconds: float
    min_body_rate_bytes: int


class RequestTimeout(GridError):
    code, status = "request_timeout", 408


JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # an unescaped backslash, then u0000


def _nul_in_url(scope: Scope) -> bool:
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"%00" in raw or b"\x00" in raw or "\x00" in scope.get("path", "")


def _nul_refused(where: str) -> JSONResponse:
    return _error(422, "invalid_input", f"the {where} holds a NUL character (U+0000), which no text may contain",
                  {"field": where})


def _error(status: int, code: str, message: str, details: object = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message, "details": details},
                        headers={"Connection": "close"})


def streaming_routes(routes: Iterable[Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(method, path regex) of every route that reads its own raw body."""
    found: list[tuple[str, re.Pattern[str]]] = []
    for context in routes:
        extra = getattr(getattr(context, "original_route", context), "openapi_extra", None) or {}
        content = (extra.get("requestBody") or {}).get("content") or {}
        if content and "application/json" not in content:
            regex, _, _ = compile_path(context.path_format)
            found.extend((method, regex) for method in context.methods)
    return found


def flat_routes(app: Any) -> list[Any]:
    """Every route of the app with its full path (FastAPI keeps included routers as nested entries)."""
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        return list(routing.iter_route_contexts(app.routes))
    return list(app.routes)


class _BodyReader:
    """``receive`` with the pace rules: a pause limit, and a minimum average rate after the grace period."""

    def __init__(self, receive: Receive, settings: BodySettings) -> None:
        self._receive = receive
        self._timeout = settings.body_read_timeout_seconds
        self._min_rate = settings.min_body_rate_bytes
        self._started = time.monotonic()
        self.received = 0

    async def __call__(self) -> Message:
        try:
            message = await asyncio.wait_for(self._receive(), timeout=self._timeout)
        except TimeoutError:
            raise RequestTimeout(f"the request body stalled for {self._timeout:g} s",
                                 details={"body_read_timeout_seconds": self._timeout}) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            elapsed = time.monotonic() - self._started
            if (message.get("more_body") and self._min_rate and elapsed > self._timeout
                    and self.received / elapsed < self._min_rate):
                raise RequestTimeout(
                    f"the request body arrives at {self.received / elapsed:.0f} bytes/s; this server needs at least "
                    f"{self._min_rate} bytes/s", details={"min_body_rate_bytes": self._min_rate})
        return message


class BodyLimits:
    """ASGI middleware enforcing the module's rules; ``routes`` is read lazily (the app's, once built)."""

    def __init__(self, app: ASGIApp, settings: BodySettings, routes: Any) -> None:
        self.app = app
        self.settings = settings
        self._routes_source = routes
        self._streaming: list[tuple[str, re.Pattern[str]]] | None = None

    def _is_streaming(self, scope: Scope) -> bool:
        if self._streaming is None:
            self._streaming = streaming_routes(self._routes_source())
        path = scope["path"]
        return any(method == scope["method"] and regex.match(path) for method, regex in self._streaming)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _nul_in_url(scope):
            await _nul_refused("url")(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        has_body = length not in (None, b"0") or b"transfer-encoding" in headers
        if not has_body:
            await self.app(scope, receive, send)
            return
        reader = _BodyReader(receive, self.settings)
        if self._is_streaming(scope):
            await self.app(scope, reader, send)  # RequestTimeout from the route's reads: a GridError (408)
            return
        limit = self.settings.max_body_bytes
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
            await self._too_large(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await reader()
                if message["type"] != "http.request":
                    return  # the client went away
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await self._too_large(scope, receive, send, limit)
                    return
                chunks.append(chunk)
                if not message.get("more_body"):
                    break
        except RequestTimeout as exc:
            await _error(exc.status, exc.code, exc.message, exc.details)(scope, receive, send)
            return
        body = b"".join(chunks)
        if JSON_NUL.search(body):
            await _nul_refused("body")(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: a disconnect, whenever it comes

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        message = f"the request body is larger than this server accepts ({limit} bytes)"
        response = _error(413, "payload_too_large", message, {"max_body_bytes": limit})
        await response(scope, receive, send)
