"""Every line the CLI prints goes through here: tables, JSON, messages, errors and progress bars.

Commands build plain data (dicts and lists) and hand it to ``emit``; the ``--output`` option decides
whether it becomes a Rich table or JSON on stdout. Messages and errors go to stderr, so JSON on stdout
stays parseable in scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table


class Output(StrEnum):
    table = "table"
    json = "json"


stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)
_state = {"output": Output.table}


def set_output(output: Output) -> None:
    _state["output"] = output


def output() -> Output:
    return _state["output"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return str(value)


def emit(data: Any, *, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``data``: a list of rows as a table (``columns`` picks and orders them), a mapping as a
    two-column field/value table; in JSON mode, the data itself."""
    if output() is Output.json:
        stdout.print_json(json.dumps(data, default=str))
        return
    if isinstance(data, Mapping):
        table = Table(title=title, show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for key in columns or list(data):
            table.add_row(key, _cell(data.get(key)))
        stdout.print(table)
        return
    rows = list(data)
    cols = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=title)
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in cols))
    stdout.print(table)
    if not rows:
        stderr.print("[dim]nothing to show[/dim]")


def page_note(page: Mapping[str, Any]) -> None:
    """After a table of one page of a longer list: which rows were shown, and how to see the rest."""
    items, total, offset = page.get("items") or [], int(page.get("total") or 0), int(page.get("offset") or 0)
    if output() is Output.table and total > len(items):
        first = offset + 1 if items else offset
        stderr.print(f"[dim]rows {first}-{offset + len(items)} of {total}; use --offset and --limit "
                     f"for more[/dim]", highlight=False)


def message(text: str) -> None:
    """A note for people, e.g. 'user created', on stderr: it never mixes into JSON on stdout."""
    stderr.print(text, highlight=False)


def secret_notice(lines: Iterable[str]) -> None:
    """Credentials shown once (owner password, API token): boxed on stderr in table mode."""
    stderr.print("[bold yellow]Shown once; store it now:[/bold yellow]")
    for line in lines:
        stderr.print(f"  {line}", highlight=False)


def error(text: str) -> None:
    stderr.print(f"[bold red]error:[/bold red] {text}", highlight=False)


@contextmanager
def transfer_progress(description: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A Rich progress bar for bytes moving (upload, download) on stderr, updated by calling
    ``progress(done, total)``. Yields None, and draws nothing, in JSON mode or when stderr is not a terminal."""
    if output() is Output.json or not stderr.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield progress
