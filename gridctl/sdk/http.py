"""The one HTTP layer under the SDK and the CLI: base URL, bearer token, JSON, typed errors."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit


def _skip_httpx_command_line() -> None:
    """``import httpx`` also imports httpx's own command-line client (``httpx._main``: click, rich's syntax
    highlighting, pygments) whenever those are installed, as they are here: about 70 ms of every ``gridctl``
    command that talks to a Node, for a tool neither the CLI nor the SDK uses. A ``None`` in ``sys.modules``
    makes that one import fail, which httpx expects (its ``main`` then explains how to install its CLI); the
    entry is removed again at once, so a later ``import httpx._main`` works."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        if sys.modules.get("httpx._main", "") is None:
            del sys.modules["httpx._main"]


_skip_httpx_command_line()

import httpx  # noqa: E402  (after the function above)

from gridctl.sdk.errors import ConnectionFailed, GridctlError, ServerError, from_response  # noqa: E402

API_PREFIX = "/api/v1"


def normalize_url(url: str) -> str:
    """``http(s)://host[:port]`` without a trailing slash or the API prefix; a clear error otherwise."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GridctlError("usage", f"not a Node URL: {url!r} (expected http://HOST:PORT or https://HOST)")
    return url


def segment(ref: object) -> str:
    """One path segment for an id, an email or a name: percent-encoded, ``/`` and ``%`` included (the Node matches
    such segments as sent: grid_runtime/node/routing.py), ``@`` kept readable, and a name ``.`` or ``..`` escaped
    too, so that no URL normalisation takes it for a dot-segment and drops it."""
    text = quote(str(ref), safe="@")
    return text.replace(".", "%2E") if text in {".", ".."} else text


def _no_tls() -> ssl.SSLContext:
    """For a plain-http Node: httpx builds a TLS context for every client, and its default one loads the whole
    CA bundle (a tenth of a ``gridctl users list``) for a connection that never uses it. This one loads nothing
    and still verifies, so it refuses any TLS peer should one ever be reached (it trusts no certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Http:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0,
                 ca_file: str | None = None) -> None:
        """``ca_file``: trust only this root certificate (a Node with its own CA); else the system's CAs."""
        self.url = normalize_url(url)
        headers = {"User-Agent": "gridctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = True
        if ca_file:
            verify = ssl.create_default_context(cadata=Path(ca_file).read_text())
        elif self.url.startswith("http://"):
            verify = _no_tls()
        self.client = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout, verify=verify)

    @property
    def has_token(self) -> bool:
        return "Authorization" in self.client.headers

    def set_token(self, token: str | None) -> None:
        if token:
            self.client.headers["Authorization"] = f"Bearer {token}"
        else:
            self.client.headers.pop("Authorization", None)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON (None for 204), or raise ``GridctlError``."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, str(exc) or type(exc).__name__) from None
        raise_for_error(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServerError("internal", f"the Node answered {method} {path} with something other than JSON",
                              status=response.status_code) from None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.client.close()


def raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        code, message, details = str(body["code"]), str(body["message"]), body.get("details")
    except (ValueError, KeyError, TypeError):
        code = "internal" if response.status_code >= 500 else "error"
        message, details = f"HTTP {response.status_code} from the Node", None
    raise from_response(code, message, status=response.status_code, details=details)
