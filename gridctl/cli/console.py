"""Every line the CLI prints goes through here: tables, JSON, messages, errors, prompts and progress bars.

Commands build plain data (dicts and lists) and hand it to ``emit``; the ``--output`` option decides
whether it becomes a Rich table or JSON on stdout. Messages, errors and prompts go to stderr, so JSON on
stdout stays parseable in scripts.

Nothing a user or the Node wrote is ever read as Rich markup: every string becomes a plain ``Text`` after
``safe`` has made its control characters visible (``\\x1b`` instead of an escape sequence that would recolour or
rewrite the terminal, ``\\u202e`` instead of a bidi override that would reorder the line). Styles come only from
this module. Tables wrap long cells instead of cutting them, and round numbers for people (JSON keeps them
exact).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


class Output(StrEnum):
    table = "table"
    json = "json"


_state: dict[str, Any] = {"output": Output.table}
_consoles: dict[bool, Console] = {}


def set_output(output: Output) -> None:
    _state["output"] = output
    _consoles.clear()  # each invocation measures the terminal afresh (COLUMNS may differ)


def output() -> Output:
    return _state["output"]


def _console(err: bool) -> Console:
    found = _consoles.get(err)
    if found is None:
        from rich.console import Console

        found = _consoles[err] = Console(stderr=err, soft_wrap=True, markup=False, emoji=False, highlight=False)
    return found


def __getattr__(name: str) -> Any:  # ``console.stdout`` / ``console.stderr``: the Rich consoles, made on first use
    if name in ("stdout", "stderr"):
        return _console(name == "stderr")
    raise AttributeError(name)


# --- text that cannot take over the terminal -----------------------------------------------------------

# C0 and C1 control characters (ESC starts ANSI sequences; CSI is \x9b), DEL, and the invisible formatting
# characters that reorder or hide text: bidi embeddings, overrides and isolates, zero-width marks, BOM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: object) -> str:
    """``value`` as one line of inert text: control and bidi-formatting characters shown as escapes."""
    return _UNSAFE.sub(_visible, str(value))


def plain(value: object, style: str = "") -> Text:
    """A Rich ``Text`` of ``value`` made ``safe``: never parsed as markup, emoji codes or ANSI."""
    from rich.text import Text

    return Text(safe(value), style=style)


# --- tables and JSON ----------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]00:00)?$")


def number(value: float) -> str:
    """A float for people: four significant digits (``4.848``), thousands grouped (``12,346``)."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def cell(value: Any) -> str:
    """One table cell: '-' for nothing, yes/no, rounded numbers, lists joined, times to the second."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, str):
        stamp = _TIMESTAMP.match(value)
        if stamp:
            return f"{stamp.group(1)} {stamp.group(2)}"
    return str(value)


def _list_cell(value: Any) -> Text:
    """A cell of a row table: a list as one item per line (so items never break mid-word), else ``cell``."""
    if isinstance(value, list | tuple) and value and not any(isinstance(v, list | tuple | Mapping) for v in value):
        from rich.text import Text

        return Text("\n").join(plain(cell(v)) for v in value)
    return plain(cell(value))


# JSON escapes C0 itself; these would still reach a terminal raw (C1 controls, DEL, bidi controls).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]")


def json_text(data: Any) -> str:
    """``data`` as indented JSON, exact, with every character that could act on a terminal \\u-escaped."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _table(title: str | None, **options: Any) -> Any:
    from rich.table import Table

    return Table(title=plain(title) if title else None, **options)


def emit(data: Any, *, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print ``data``: a list of rows as a table (``columns`` picks and orders them), a mapping as a
    two-column field/value table; in JSON mode, the data itself."""
    if output() is Output.json:
        sys.stdout.write(json_text(data) + "\n")
        sys.stdout.flush()
        return
    if isinstance(data, Mapping):
        table = _table(title, show_header=False, box=None)
        table.add_column(style="bold", overflow="fold")
        table.add_column(overflow="fold")
        for key in columns or list(data):
            table.add_row(plain(key), plain(cell(data.get(key))))
        _console(False).print(table)
        return
    rows = list(data)
    cols = list(columns or (rows[0].keys() if rows else []))
    table = _table(title)
    for col in cols:
        table.add_column(plain(col.replace("_", " ")), overflow="fold")  # headers wrap between words
    for row in rows:
        table.add_row(*(_list_cell(row.get(c)) for c in cols))
    _console(False).print(table)
    if not rows:
        hint("nothing to show")


def emit_items(items: Sequence[Any], *, columns: Sequence[str] | None = None, title: str | None = None,
               rows: Sequence[Mapping[str, Any]] | None = None, page: Mapping[str, Any] | None = None) -> None:
    """A list command's output: in JSON always the array of ``items`` (the Node's own records); in a table
    ``rows`` (the items shaped for people) and, for one page of a longer list, a note on stderr."""
    if output() is Output.json:
        emit(list(items))
        return
    emit(list(rows if rows is not None else items), columns=columns, title=title)
    if page is not None:
        page_note(page)


def page_note(page: Mapping[str, Any]) -> None:
    """After a table of one page of a longer list: which rows were shown, and how to see the rest."""
    items, total, offset = page.get("items") or [], int(page.get("total") or 0), int(page.get("offset") or 0)
    if output() is Output.table and total > len(items):
        first = offset + 1 if items else offset
        hint(f"rows {first}-{offset + len(items)} of {total}; use --offset and --limit for more")


# --- messages on stderr -----------------------------------------------------------------------------------

def message(text: object) -> None:
    """A note for people, e.g. 'user created', on stderr: it never mixes into JSON on stdout."""
    _console(True).print(plain(text))


def styled(text: object, style: str) -> None:
    """A message in a style of this module's choosing (the text itself stays plain)."""
    _console(True).print(plain(text, style))


def hint(text: object) -> None:
    styled(text, "dim")


def line(*parts: tuple[object, str] | object) -> None:
    """One stderr line of several parts, each plain text or ``(text, style)``."""
    from rich.text import Text

    out = Text()
    for part in parts:
        text, style = part if isinstance(part, tuple) else (part, "")
        out.append(safe(text), style=style)
    _console(True).print(out)


def secret_notice(lines: Iterable[str]) -> None:
    """Credentials shown once (owner password, API token): boxed on stderr in table mode."""
    styled("Shown once; store it now:", "bold yellow")
    for text in lines:
        message(f"  {text}")


def error(text: object) -> None:
    line(("error:", "bold red"), " ", text)


# --- prompts: on stderr, answers from stdin ---------------------------------------------------------------

def ask(question: str, *, hidden: bool = False) -> str | None:
    """Ask on stderr and read one line from stdin (hidden on a terminal); None when stdin has no answer."""
    prompt = f"{safe(question)}: "
    if hidden and sys.stdin.isatty():
        import getpass

        try:
            return getpass.getpass(prompt, stream=sys.stderr)
        except EOFError:
            return None
    sys.stderr.write(prompt)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if hidden or not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.rstrip("\r\n") if answer else None


def ask_yes_no(question: str) -> bool | None:
    """A yes/no question (default no); None when stdin has no answer (no terminal, end of input)."""
    while True:
        answer = ask(f"{question} [y/N]")
        if answer is None:
            return None
        if answer.strip().lower() in ("y", "yes"):
            return True
        if answer.strip().lower() in ("", "n", "no"):
            return False
        message("please answer y or n")


@contextmanager
def transfer_progress(description: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A Rich progress bar for bytes moving (upload, download) on stderr, updated by calling
    ``progress(done, total)``. Yields None, and draws nothing, in JSON mode or when stderr is not a terminal."""
    err = _console(True)
    if output() is Output.json or not err.is_terminal:
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

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(safe(description), total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield progress
