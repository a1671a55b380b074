"""``python -m grid_runtime.node``: serve the Node API with uvicorn, configured from GRID_NODE_* variables."""

from __future__ import annotations

import uvicorn

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app


def main() -> None:
    settings = NodeSettings()
    # Slow clients: idle keep-alive connections close after keep_alive_seconds, request heads are capped at
    # 16 KiB by h11/httptools, and bodies must keep a minimum pace (grid_runtime.node.limits).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=False, timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
                h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=10,
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
