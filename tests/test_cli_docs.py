"""Documentation kept honest: every command has help and a section in docs/cli.md; exit codes match."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gridctl.cli import exit_codes
from gridctl.cli.app import app

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name in command.list_commands(None):
            yield from walk(subcommands[name], (*path, name))
    else:
        yield " ".join(path), command


COMMANDS = dict(walk(typer.main.get_command(app), ("gridctl",)))


def test_the_tree_holds_the_administration_commands() -> None:
    for name in ("gridctl users add", "gridctl users set-budget", "gridctl roles update",
                 "gridctl groups add-member", "gridctl tokens create", "gridctl audit", "gridctl login",
                 "gridctl context use"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help(name: str) -> None:
    command = COMMANDS[name]
    assert (command.help or "").strip(), f"{name} has no help text"
    for param in command.params:
        if param.param_type_name == "option":
            assert (getattr(param, "help", None) or "").strip(), f"{name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_a_section_in_docs(name: str) -> None:
    assert re.search(rf"^#+ {re.escape(name)}$", DOCS.read_text(), re.MULTILINE), f"{name} not in docs/cli.md"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_takes_output(name: str) -> None:
    assert any("--output" in p.opts for p in COMMANDS[name].params), f"{name} has no --output"


def test_exit_codes_table_matches_exit_codes_module() -> None:
    documented = {int(code): meaning for code, meaning in
                  re.findall(r"^\| (\d+) \| ([^|]+) \|", DOCS.read_text(), re.MULTILINE)}
    defined = {value: name for name, value in vars(exit_codes).items() if name.isupper() and isinstance(value, int)}
    assert set(documented) == set(defined)
    for code, meaning in documented.items():
        if code not in (exit_codes.OK, exit_codes.ERROR):
            lead = meaning.split(":")[0].strip().replace(" ", "_")
            assert lead.startswith(defined[code].lower()), f"exit code {code}: {meaning!r} vs {defined[code]}"


def test_every_error_code_the_cli_maps_is_documented() -> None:
    text = DOCS.read_text()
    for code in exit_codes.BY_CODE:
        assert f"`{code}`" in text, f"error code {code} not in docs/cli.md"
