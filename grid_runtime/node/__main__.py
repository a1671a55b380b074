"""``python -m grid_runtime.node``: serve the Node API with uvicorn, configured from GRID_NODE_* variables.

The cyclic garbage collector is paused while the Node starts (issue 11): importing the Node makes some 200,000
objects that live as long as the process, and collecting again and again while they are made cost a tenth or
more of the start's CPU time. The Node's lifespan turns it back on once started (``grid_runtime.node.app``),
after moving what the start made out of its reach (``gc.freeze``: of those objects a full collection would find
only about 1,000 garbage), so later collections do not walk them either.
"""

from __future__ import annotations

import gc

if __name__ == "__main__":  # run as the Node, not imported
    gc.disable()

import logging  # noqa: E402  (after pausing the collector, which is the point)
import os  # noqa: E402
import sys  # noqa: E402

import uvicorn  # noqa: E402

from grid_runtime.core.settings import NodeSettings  # noqa: E402
from grid_runtime.node.app import create_app  # noqa: E402


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
    # A thread coming back from SQLite or a socket waits for Python's lock until the holder's switch interval ends:
    # 1 ms rather than 5 keeps the writer and the event loop from waiting behind the readers' Python work
    # (docs/benchmarks.md, "Load").
    sys.setswitchinterval(0.001)
    settings = NodeSettings()
    log_to_stderr()
    # Slow clients: idle keep-alive connections close after keep_alive_seconds, request heads are capped at
    # 16 KiB by h11/httptools, and bodies must keep a minimum pace (grid_runtime.core.limits).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info",
                access_log=False, timeout_keep_alive=max(1, round(settings.keep_alive_seconds)),
                h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=10,
                proxy_headers=False, server_header=False)


if __name__ == "__main__":
    main()
