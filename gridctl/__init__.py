"""gridctl: the command-line tool and Python SDK for gridctl Nodes.

Public names are imported lazily so that ``import gridctl`` (and ``gridctl --help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridctl.sdk.connect import connect
    from gridctl.sdk.errors import GridctlError
    from gridctl.sdk.jobs import DP
    from gridctl.sdk.network import Network, connect_network
    from gridctl.sdk.node import Node

__all__ = ["DP", "GridctlError", "Network", "Node", "connect", "connect_network"]

_LAZY = {"connect": "gridctl.sdk.connect", "Node": "gridctl.sdk.node", "GridctlError": "gridctl.sdk.errors",
         "DP": "gridctl.sdk.jobs", "connect_network": "gridctl.sdk.network", "Network": "gridctl.sdk.network"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gridctl' has no attribute {name!r}")
