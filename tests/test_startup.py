"""Start-up is a feature: ``gridctl --help`` imports no command module and none of the heavy stacks, a command
imports only what it uses, and the entry point behaves at the edges (``--version``, a closed pipe)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
import typer.main

from gridctl.cli import commands

HEAVY = ["torch", "ray", "pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_azure_native", "fastapi", "sqlalchemy",
         "boto3", "google.cloud", "azure", "opacus", "opendp", "uvicorn", "alembic", "grid_runtime"]
# What `gridctl --help` needs none of: Rich (tables, help panels), the HTTP stack, YAML (the contexts file),
# click itself (Typer carries its own copy), pygments.
NOT_FOR_HELP = ["rich", "httpx", "httpcore", "yaml", "click", "pygments", "ssl", "certifi"]
COMMAND_MODULES = sorted({f"gridctl.cli.{m}" for modules, _ in commands.COMMANDS.values() for m in modules})

# A fresh interpreter runs the app in process, then reports what it imported.
PROBE = """
import json, sys
from gridctl.cli.app import main
sys.argv = ["gridctl", *{args!r}]
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "GRIDCTL_HOME": "/nonexistent", **(env or {})})
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def among(modules: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_root_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = imported_by("--help")
    assert "gridctl.cli.app" in modules
    assert among(modules, COMMAND_MODULES) == []
    assert among(modules, HEAVY + NOT_FOR_HELP) == []


@pytest.mark.parametrize("args", [["users", "--help"], ["deploy", "local", "--help"], ["audit", "--help"],
                                  ["workers", "--help"]])
def test_a_commands_help_imports_its_own_modules_only(args: list[str]) -> None:
    modules = imported_by(*args)
    own = {f"gridctl.cli.{m}" for m in commands.COMMANDS[args[0]][0]}
    assert own <= modules  # the probe really built the command
    others = set(COMMAND_MODULES) - own - {"gridctl.cli.deploy"}  # clouds.py builds on deploy.py's groups
    assert among(modules, sorted(others)) == []
    assert among(modules, HEAVY) == []


@pytest.mark.parametrize("options", [[], ["--output", "json", "--limit", "10", "--search", "ada"]])
def test_users_list_imports_what_it_uses_only(options: list[str]) -> None:
    """The command runs up to its request (nothing listens on port 1: exit 9), importing what it uses only."""
    modules = imported_by("users", "list", *options,
                          env={"GRIDCTL_URL": "http://127.0.0.1:1", "GRIDCTL_TOKEN": "gapi_x"})
    assert {"gridctl.cli.users", "httpx", "gridctl.sdk.http"} <= modules
    # httpx's own command-line client (click, pygments) is skipped; Typer's Pydantic coercion is not needed.
    assert among(modules, ["httpx._main", "click", "pygments", "pydantic", "typer._adapters"]) == []
    assert among(modules, HEAVY) == []
    assert among(modules, [m for m in COMMAND_MODULES if m != "gridctl.cli.users"]) == []


def test_a_plain_http_client_reads_no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from gridctl.sdk.http import Http

    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    Http("http://127.0.0.1:1", "gapi_x").close()
    assert loads == []
    Http("https://127.0.0.1:1", "gapi_x").close()  # the control: an https Node gets the CA bundle
    assert len(loads) == 1


def test_importtime_of_the_console_script_names_nothing_heavy() -> None:
    """The same, as ``python -X importtime`` sees the real entry point."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c",
                             "import sys; sys.argv = ['gridctl', '--help']; from gridctl.cli.app import main; main()"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "gridctl.cli.app" in imported
    assert among(imported, HEAVY + NOT_FOR_HELP + COMMAND_MODULES) == []


def test_the_sdk_imports_nothing_heavy() -> None:
    probe = ("import json, sys, gridctl; gridctl.connect; import gridctl.sdk.node; "
             "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    modules = set(json.loads(result.stdout))
    assert {"gridctl.sdk.connect", "httpx"} <= modules
    assert among(modules, HEAVY + ["httpx._main", "click", "pygments", "typer", "rich"]) == []


def test_httpx_cli_stays_importable_after_the_sdk_skipped_it() -> None:
    probe = "import gridctl.sdk.http, httpx._main, sys; print(sys.modules['httpx._main'] is not None)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr[-2000:]


def eager_tree() -> dict[str, typer.main.TyperGroup]:
    """Every top-level command the command modules register, built the old way: all modules at once."""
    import importlib

    scratch = typer.Typer(rich_markup_mode=None, add_completion=False)
    scratch.callback()(lambda: None)
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "register"):
            module.register(scratch)
    for command, (modules, _) in commands.COMMANDS.items():
        module = importlib.import_module(f"gridctl.cli.{modules[0]}")
        if not hasattr(module, "register") and command == modules[0]:
            scratch.add_typer(module.app, name=command)
    return typer.main.get_command(scratch).commands  # type: ignore[attr-defined]


def test_the_table_lists_every_command_the_modules_define() -> None:
    assert sorted(eager_tree()) == sorted(commands.COMMANDS)


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_each_summary_is_the_commands_own_first_sentence(name: str) -> None:
    built = commands.build(name)
    expected = commands.first_sentence(built.help or "")
    assert commands.summary(name) == expected, (
        f"gridctl/cli/commands.py: the summary of {name!r} should read {expected!r}")


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_a_lazily_built_command_is_the_whole_command(name: str) -> None:
    def shape(command: object) -> object:
        subs = getattr(command, "commands", None)
        if subs is None:
            return sorted(p.name or "" for p in command.params)  # type: ignore[attr-defined]
        return {n: shape(subs[n]) for n in subs}

    assert shape(commands.build(name)) == shape(eager_tree()[name])


def console_script() -> str:
    path = shutil.which("gridctl", path=str(Path(sys.executable).parent)) or shutil.which("gridctl")
    assert path, "the gridctl console script is not installed (pip install -e .)"
    return path


def test_root_help_lists_every_command_with_a_whole_sentence(tmp_path: Path) -> None:
    result = subprocess.run([console_script(), "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GRIDCTL_HOME": str(tmp_path), "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:", 1)[1]
    for name in commands.COMMANDS:
        assert f"\n  {name} " in listed
    assert "..." not in listed  # click would cut a long summary to the width
    assert " ".join(listed.split()).count(" ".join(commands.summary("check").split())) == 1


def test_group_help_shows_whole_sentences(tmp_path: Path) -> None:
    result = subprocess.run([console_script(), "deploy", "--help"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GRIDCTL_HOME": str(tmp_path), "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:", 1)[1]
    assert "\n  local " in listed
    assert "..." not in listed


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = subprocess.run([console_script(), "--version"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "GRIDCTL_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"gridctl {version('gridctl')}\n"
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["--help"], ["users", "--help"], ["--version"], ["context", "list", "-o", "json"],
                                  ["status"]])
def test_a_closed_pipe_ends_the_command_quietly(args: list[str], tmp_path: Path) -> None:
    """``gridctl ... | head``: the reader has gone before gridctl writes; no traceback, no 'unexpected' error."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([console_script(), *args], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=60, env={**os.environ, "GRIDCTL_HOME": str(tmp_path)})
    finally:
        os.close(write_end)
    assert result.returncode in (0, 1)
    assert "Error" not in result.stderr and "Traceback" not in result.stderr and "unexpected" not in result.stderr, (
        result.stderr)


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """The shape of ``gridctl --help | head -1`` with the writer still writing when head exits."""
    script = (f"{console_script()} users --help; {console_script()} --help; {console_script()} users --help"
              " | head -c 10 >/dev/null")
    result = subprocess.run(["bash", "-c", f"set -o pipefail; ({script}) | head -n 1"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "GRIDCTL_HOME": str(tmp_path)})
    assert result.stdout.startswith("Usage: gridctl users")
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr


def test_a_mistyped_command_is_a_usage_error_with_a_suggestion() -> None:
    from typer.testing import CliRunner

    from gridctl.cli.app import app

    result = CliRunner().invoke(app, ["user", "list"], env={"GRIDCTL_HOME": "/nonexistent"})
    assert result.exit_code == 2
    assert "No such command 'user'. Did you mean 'users'?" in result.stderr


def every_parameter() -> list[tuple[str, object, object]]:
    from typer._click import Context

    found: list[tuple[str, object, object]] = []

    def walk(command: object, path: str) -> None:
        ctx = Context(command)  # type: ignore[arg-type]
        for param in command.params:  # type: ignore[attr-defined]
            found.append((f"{path} {param.name}", param, ctx))
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}")

    for name in commands.COMMANDS:
        walk(commands.build(name), name)
    return found


def test_quick_coercion_gives_what_typers_gives_for_every_parameter() -> None:
    """None, each default, and typed-looking strings: the same value (and type), or the same error."""
    from typer._coercion import build_runtime_param

    def outcome(coercion: object, value: object, param: object, ctx: object) -> tuple[object, ...]:
        try:
            result = coercion.coerce(value, param=param, ctx=ctx)  # type: ignore[attr-defined]
        except Exception as exc:
            return ("error", type(exc).__name__, str(exc))
        return ("ok", type(result), result)

    checked = 0
    for where, param, ctx in every_parameter():
        typer_own = build_runtime_param(param.type_descriptor)  # type: ignore[attr-defined]
        default = param.default  # type: ignore[attr-defined]
        for value in [None, default, "7", "-1", "0", "007", "+7", " 7", "1e3", "500", "501", "json", "JSON",
                      "table", "yes", "", "local", "aws"]:
            if callable(value):
                continue
            quick = outcome(commands.QuickCoercion(), value, param, ctx)
            assert quick == outcome(typer_own, value, param, ctx), (where, value)
            checked += 1
    assert checked > 1000


def test_every_built_parameter_uses_the_quick_coercion() -> None:
    for where, param, _ in every_parameter():
        assert isinstance(param._runtime_param, commands.QuickCoercion), where  # type: ignore[attr-defined]
