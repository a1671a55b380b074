"""``python -m grid_runtime.node``: serve the Node API with uvicorn, configured from GRID_NODE_* variables."""

from __future__ import annotations

import uvicorn

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app


def main() -> None:
    settings = NodeSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=False)


if __name__ == "__main__":
    main()
