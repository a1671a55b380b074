"""Options and helpers shared by every command module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from gridctl.cli import console
from gridctl.cli.console import Output

if TYPE_CHECKING:
    from gridctl.sdk.node import Node

OutputOption = Annotated[
    Output | None,
    typer.Option("--output", "-o", envvar="GRIDCTL_OUTPUT", help="Print a table (default) or JSON.",
                 show_default=False),
]


def connect(output: Output | None) -> Node:
    """Apply ``--output`` and return a client for the selected Node (GRIDCTL_URL/TOKEN or the context)."""
    from gridctl.cli.contexts import resolve
    from gridctl.sdk.node import Node

    if output is not None:
        console.set_output(output)
    url, token = resolve(os.environ.get("GRIDCTL_CONTEXT") or None)
    return Node(url, token=token)
