"""``python -m grid_runtime.node``: serve the Node API with uvicorn, configured from GRID_NODE_* variables."""

from __future__ import annotations

import logging
import os

import uvicorn

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app


def log_to_stderr() -> None:
    """The Node's own messages from INFO up (the start-up sweep, the Ray head, Workers warmed) go to stderr beside
    uvicorn's; without a handler Python would print only warnings."""
    logger = logging.getLogger("grid_runtime")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     [%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main() -> None:
    # Everything the Node creates (database, objects, uploads, its Ray driver's logs) is its owner's alone, however
    # it was started (providers/local starts it so too; a systemd unit or a shell might not).
    os.umask(0o077)
    settings = NodeSettings()
    log_to_stderr()
    # Slow clients: idle keep-alive connections close after keep_alive_seconds, request heads are capped at
    # 16 KiB by h11/httptools, and bodies must keep a minimum pace (grid_runtime.node.limits).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=False, timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
                h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=10,
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
