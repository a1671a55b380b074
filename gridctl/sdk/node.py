"""The Node facade: what ``gridctl.connect`` returns, and what every CLI command talks through."""

from __future__ import annotations

from gridctl.sdk.http import Http


class Node:
    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = Http(self.url, token)

    def __repr__(self) -> str:
        return f"Node({self.url!r})"
