"""What ``python -m grid_runtime.node`` and ``python -m grid_runtime.network`` share: their own messages on stderr,
and uvicorn set up for a server that faces the open network."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp


def log_to_stderr() -> None:
    """The server's own messages from INFO up (the start-up sweep, the Ray head, Workers warmed) go to stderr beside
    uvicorn's; without a handler Python would print only warnings."""
    logger = logging.getLogger("grid_runtime")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     [%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def serve(app: ASGIApp, *, host: str, port: int, **options: Any) -> None:
    """Run ``app`` with uvicorn until stopped. Request heads are capped at 16 KiB by h11/httptools; no access log
    (the audit log says who did what); ``X-Forwarded-*`` headers are not believed; no ``Server`` header."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, h11_max_incomplete_event_size=16 * 1024,
                timeout_graceful_shutdown=10, proxy_headers=False, server_header=False, **options)
