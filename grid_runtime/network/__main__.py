"""``python -m grid_runtime.network``: serve the Network API with uvicorn, configured from GRID_NETWORK_* variables."""

from __future__ import annotations

import os

from grid_runtime.core.server import log_to_stderr, serve
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.app import create_app


def main() -> None:
    os.umask(0o077)  # the database and the setup token are the operator's alone
    settings = NetworkSettings()
    log_to_stderr()
    serve(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
