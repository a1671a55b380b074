"""The CLI's nouns, in the order ``gridctl --help`` lists them. Add a module here to add a noun."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

NOUNS: list[tuple[str, str]] = [
    # (command name, module under gridctl.cli)
]


def modules() -> Iterator[tuple[str, ModuleType]]:
    for name, module in NOUNS:
        yield name, importlib.import_module(f"gridctl.cli.{module}")
