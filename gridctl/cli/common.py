"""Options and helpers shared by every command module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridctl.cli import console
from gridctl.cli.console import Output
from gridctl.sdk.errors import GridctlError

if TYPE_CHECKING:
    from gridctl.sdk.node import Node

OutputOption = Annotated[
    Output | None,
    typer.Option("--output", "-o", envvar="GRIDCTL_OUTPUT", help="Print a table (default) or JSON.",
                 show_default=False),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=500, help="At most this many rows.")]
OffsetOption = Annotated[int, typer.Option("--offset", min=0, help="Skip this many rows first.")]


def use_output(output: Output | None) -> None:
    """Apply ``--output`` (table when not given) for a command that does not talk to a Node."""
    console.set_output(output or Output.table)


def selected_context() -> str | None:
    """The context named by ``--context``/GRIDCTL_CONTEXT, or None for the current one."""
    return os.environ.get("GRIDCTL_CONTEXT") or None


def connect(output: Output | None) -> Node:
    """Apply ``--output`` and return a client for the selected Node (GRIDCTL_URL/TOKEN or the context)."""
    from gridctl.cli.contexts import resolve
    from gridctl.sdk.node import Node

    use_output(output)
    target = resolve(selected_context())
    return Node(target.url, token=target.token, ca_file=target.ca_file or None)


def confirm(question: str, *, yes: bool) -> None:
    """Ask before a destructive action unless ``--yes`` (on stderr; stdout stays clean for JSON). Without an
    answer on stdin (no terminal, end of input) refuse: a usage error saying to pass --yes. Nothing changed."""
    if yes:
        return
    agreed = console.ask_yes_no(question)
    if agreed is None:
        raise GridctlError("usage", "not confirmed: pass --yes to confirm without a prompt")
    if not agreed:
        raise GridctlError("cancelled", "cancelled; nothing was changed")


def secret(question: str, *, twice: bool = False) -> str:
    """A password, prompted for on stderr (hidden on a terminal); ``twice`` asks again until both match."""
    while True:
        first = console.ask(question, hidden=True)
        if first is None:
            raise GridctlError("usage", f"no answer to {question!r}: pass it as an option instead")
        if not first:
            console.message("it cannot be empty")
            continue
        if not twice:
            return first
        again = console.ask("Repeat for confirmation", hidden=True)
        if again == first:
            return first
        if again is None:
            raise GridctlError("usage", f"no answer to {question!r}: pass it as an option instead")
        console.message("error: the two entries do not match")


def removed(kind: str, ref: str) -> None:
    """Report a deletion: a message, and ``{"removed": kind, "ref": ref}`` in JSON mode."""
    if console.output() is Output.json:
        console.emit({"removed": kind, "ref": ref})
    else:
        console.message(f"{kind} {ref} removed")


def split_values(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated option values as one list (``-c a,b -c c``)."""
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def flatten(record: dict[str, Any], **renames: str) -> dict[str, Any]:
    """A copy for a table: nested ``{"id", "name"}`` objects shown by name."""
    row = dict(record)
    for key, value in record.items():
        if isinstance(value, dict) and "name" in value:
            row[key] = value["name"]
    for new, old in renames.items():
        row[new] = record.get(old)
    return row


class Names:
    """Names for the ids a record holds (datasets, tensors, users), fetched once each; the id when the Node
    will not say (no such object any more, or no right to see it)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.cache: dict[tuple[str, Any], str] = {}

    def _lookup(self, kind: str, ref: Any, fetch: Any, key: str) -> str:
        if ref is None:
            return "-"
        if (kind, ref) not in self.cache:
            try:
                self.cache[kind, ref] = str(fetch(ref)[key])
            except GridctlError:
                self.cache[kind, ref] = str(ref)
        return self.cache[kind, ref]

    def user(self, user_id: Any) -> str:
        """A user's email (needs manage_users to look up others; else the id)."""
        return self._lookup("user", user_id, self.node.users.get, "email")

    def dataset(self, dataset_id: Any) -> str:
        return self._lookup("dataset", dataset_id, self.node.datasets.get, "name")

    def tensor(self, tensor_id: Any) -> str:
        return self._lookup("tensor", tensor_id, self.node.tensors.get, "name")

    def target(self, target_type: str | None, target_id: Any) -> str:
        """``dataset NAME``, ``tensor NAME`` or ``result ID``: what a request or a grant is about."""
        if target_type == "dataset":
            return f"dataset {self.dataset(target_id)}"
        if target_type == "tensor":
            return f"tensor {self.tensor(target_id)}"
        return f"{target_type} {target_id}" if target_type else "-"
