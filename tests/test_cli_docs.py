"""Documentation kept honest: docs/cli.md is generated from the Typer app, and it is not stale; every command
has help; the exit codes are one table, documented and applied the same way to the same error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grid_runtime.core import errors as node_errors
from gridctl.cli import docs, exit_codes
from gridctl.cli.app import app
from gridctl.sdk.errors import GridctlError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
COMMANDS: dict[str, tuple[Any, Any]] = {path: (command, ctx) for path, command, ctx in docs.commands()}


def test_docs_cli_md_is_what_the_generator_writes_now() -> None:
    assert DOCS.read_text() == docs.render(), "docs/cli.md is stale: run 'python -m gridctl.cli.docs'"


def test_the_check_mode_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(docs.render().replace("## Exit codes", "## Exit codes (edited by hand)"))
    monkeypatch.setattr(docs, "DOCS", stale)
    assert docs.main(["--check"]) == 1
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0


def test_the_tree_holds_the_administration_commands() -> None:
    for name in ("gridctl users add", "gridctl users set-budget", "gridctl roles update",
                 "gridctl groups add-member", "gridctl tokens create", "gridctl audit", "gridctl login",
                 "gridctl context use", "gridctl budget"):
        assert name in COMMANDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help(name: str) -> None:
    command, _ctx = COMMANDS[name]
    assert (command.help or "").strip(), f"{name} has no help text"
    for param in command.params:
        if param.param_type_name == "option":
            assert (getattr(param, "help", None) or "").strip(), f"{name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_a_section_with_its_usage_and_every_option(name: str) -> None:
    text = DOCS.read_text()
    section = text.split(f"\n### {name}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    command, ctx = COMMANDS[name]
    assert " ".join(command.get_usage(ctx).removeprefix("Usage: ").split()) in section
    for param in command.get_params(ctx):
        if param.param_type_name == "option" and "--help" not in param.opts:
            assert f"`{param.opts[0]}" in section, f"{name} {param.opts[0]} not in its section"
            if param.envvar:
                assert f"`{param.envvar}`" in section


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_takes_output(name: str) -> None:
    assert any("--output" in p.opts for p in COMMANDS[name][0].params), f"{name} has no --output"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_has_no_stray_spaces_nor_type_noise_on_flags(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split()[1:], "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    assert not re.search(r"[A-Za-z0-9)] \.(\s|$)", result.output), f"a space before a full stop in {name} --help"
    assert "[default: ]" not in result.output


def test_commands_that_take_yes_are_the_documented_confirmations() -> None:
    section = DOCS.read_text().split("## Confirmations", 1)[1].split("\n## ", 1)[0]
    asking = {name for name, (command, ctx) in COMMANDS.items() if docs.asks_first(command, ctx)}
    assert {"gridctl destroy local", "gridctl users remove", "gridctl deploy local"} <= asking
    for name in asking:
        assert f"`{name}`" in section


class TestExitCodes:
    def test_the_documented_table_is_the_module_s_table(self) -> None:
        documented = {int(code): (meaning, errors) for code, meaning, errors in
                      re.findall(r"^\| (\d+) \| ([^|]+) \| ([^|]*) \|$", DOCS.read_text(), re.MULTILINE)}
        assert set(documented) == set(exit_codes.MEANING)
        for code, (_meaning, errors) in documented.items():
            listed = set(re.findall(r"`([a-z_]+)`", errors))
            assert listed == {c for c, v in exit_codes.BY_CODE.items() if v == code}

    def test_every_exit_code_has_a_meaning(self) -> None:
        defined = {value for name, value in vars(exit_codes).items() if name.isupper() and isinstance(value, int)}
        assert defined == set(exit_codes.MEANING)

    def test_every_node_error_class_maps_to_the_exit_code_of_its_kind(self) -> None:
        expected = {"invalid_input": exit_codes.INVALID, "unauthorized": exit_codes.AUTH,
                    "forbidden": exit_codes.FORBIDDEN, "not_found": exit_codes.NOT_FOUND,
                    "already_exists": exit_codes.CONFLICT, "conflict": exit_codes.CONFLICT,
                    "payload_too_large": exit_codes.INVALID, "rate_limited": exit_codes.AUTH,
                    "budget_exceeded": exit_codes.CONFLICT, "unavailable": exit_codes.SERVER}
        classes = [c for c in vars(node_errors).values()
                   if isinstance(c, type) and issubclass(c, node_errors.GridError) and c is not node_errors.GridError]
        assert classes
        for cls in classes:
            assert exit_codes.for_error(cls.code, cls.status) == expected[cls.code], cls.__name__

    def test_an_unknown_code_follows_its_http_status(self) -> None:
        assert exit_codes.for_error("invalid_tensor", 422) == exit_codes.INVALID
        assert exit_codes.for_error("something_new", 503) == exit_codes.SERVER
        assert exit_codes.for_error("something_new", 0) == exit_codes.ERROR

    @pytest.mark.parametrize(("code", "exit_code"), sorted(exit_codes.BY_CODE.items()))
    def test_a_command_failing_with_a_code_exits_with_its_mapped_exit_code(
        self, code: str, exit_code: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        from gridctl.cli import contexts

        def fail(name: str | None = None) -> Any:
            raise GridctlError(code, f"failing with {code}", status=0)

        monkeypatch.setattr(contexts, "resolve", fail)
        result = CliRunner().invoke(app, ["users", "list"], env={"GRIDCTL_HOME": str(tmp_path)})
        assert result.exit_code == exit_code
        assert result.stderr == f"error: failing with {code}\n"


def test_the_root_help_names_every_exit_code() -> None:
    result = CliRunner().invoke(app, ["--help"])
    text = " ".join(result.output.split())
    for code in exit_codes.MEANING:
        if code:
            assert f" {code} " in text.split("Exit codes:", 1)[1].split("See docs/cli.md", 1)[0] + " "
