"""``python -m grid_runtime.network``: serve the Network API with uvicorn, configured from GRID_NETWORK_* variables."""

from __future__ import annotations

import logging
import os

import uvicorn

from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.app import create_app


def main() -> None:
    os.umask(0o077)  # the database and the setup token are the operator's alone
    settings = NetworkSettings()
    logger = logging.getLogger("grid_runtime")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     [%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False,
                h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=10, proxy_headers=False,
                server_header=False)


if __name__ == "__main__":
    main()
