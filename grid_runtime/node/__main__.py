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

import os  # noqa: E402  (after pausing the collector, which is the point)
import sys  # noqa: E402

from grid_runtime.core.server import log_to_stderr, serve  # noqa: E402
from grid_runtime.core.settings import NodeSettings  # noqa: E402
from grid_runtime.node.app import create_app  # noqa: E402


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
    # Slow clients: idle keep-alive connections close after keep_alive_seconds, and bodies must keep a minimum
    # pace (grid_runtime.core.limits).
    serve(create_app(settings), host=settings.host, port=settings.port,
          timeout_keep_alive=max(1, round(settings.keep_alive_seconds)))


if __name__ == "__main__":
    main()
