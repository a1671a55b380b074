"""The one HTTP layer under the SDK and the CLI: base URL, bearer token, JSON, typed errors."""

from __future__ import annotations

from typing import Any

import httpx

from gridctl.sdk.errors import ConnectionFailed, GridctlError

API_PREFIX = "/api/v1"


class Http:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "gridctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout)

    def set_token(self, token: str) -> None:
        self.client.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON (None for 204), or raise ``GridctlError``."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, str(exc) or type(exc).__name__) from None
        raise_for_error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

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
        code, message, details = body["code"], body["message"], body.get("details")
    except (ValueError, KeyError, TypeError):
        code = "internal" if response.status_code >= 500 else "error"
        message, details = f"HTTP {response.status_code} from the Node", None
    raise GridctlError(code, message, status=response.status_code, details=details)
