"""The CLI's nouns, in the order ``gridctl --help`` lists them. Add a module here to add a noun."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

NOUNS: list[tuple[str, str]] = [
    # (command name, module under gridctl.cli)
    ("deploy", "deploy"),  # register(root): deploy, status, destroy
    ("check", "clouds"),  # register(root): check, workers scale; adds the cloud targets to deploy and destroy
    ("auth", "auth"),  # register(root): login, logout, context
    ("users", "users"),
    ("roles", "roles"),
    ("groups", "groups"),
    ("tokens", "tokens"),
    ("audit", "audit"),  # register(root): the top-level audit command
    ("tensors", "tensors"),
    ("datasets", "datasets"),
    ("permissions", "permissions"),
    ("requests", "requests"),
    ("jobs", "jobs"),
    ("workers", "workers"),  # register(root): list, add, remove join the `workers` group of clouds.py
]


# The order of ``gridctl --help``'s command list (Typer would list plain commands before groups).
HELP_ORDER = ["deploy", "status", "destroy", "check", "workers", "login", "logout", "context", "users", "roles",
              "groups", "tokens", "audit", "tensors", "datasets", "permissions", "requests", "jobs"]


def modules() -> Iterator[tuple[str, ModuleType]]:
    for name, module in NOUNS:
        yield name, importlib.import_module(f"gridctl.cli.{module}")
