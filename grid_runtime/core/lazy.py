"""A module imported on its first use, for heavy imports off the Node's start path.

``dp_accounting`` imports scipy (a second of a cold start on a loaded machine) though the Node needs it only
once a privacy cost is computed. ``LazyModule("dp_accounting")`` stands for the module: the first attribute read
imports it (under the import system's own lock, so threads racing to it are safe); type checkers see the real
module through an ``if TYPE_CHECKING`` import beside it.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"
