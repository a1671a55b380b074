"""The root ``gridctl`` app: global options, the one error wrapper, and commands loaded when they are used.

Start-up is a feature (tests/test_startup.py, bench/cli_startup.py): ``gridctl --help`` imports none of the
command modules (gridctl/cli/commands.py lists them with their summaries), and a command imports only its own.
Help is click's plain text: Rich's help renderer alone costs more than the whole ``--help`` budget.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from gridctl.cli import commands, exit_codes
from gridctl.sdk.errors import GridctlError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 other error, 2 usage, 3 auth (not logged in, bad or expired token, wrong password), "
    "4 forbidden, 5 not found, 6 conflict (already exists, in use, budget), 7 invalid input, "
    "8 server error, 9 connection error, 10 request denied at once. See docs/cli.md.\n\n"
    "Environment: GRIDCTL_URL and GRIDCTL_TOKEN select a Node and a token instead of the saved context (for "
    "CI); GRIDCTL_HOME holds the contexts file (default ~/.config/gridctl); GRIDCTL_DEBUG=1 shows tracebacks."
)


class GridctlGroup(TyperGroup):
    """Builds each top-level command on first use, and turns every error into one readable line and a
    documented exit code; never a traceback."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = commands.LazyCommands(self.commands)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # Typer adds the completion options after __init__; the commands get theirs when they are built.
        commands.quick_coercion(self, subcommands=False)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names alone: TyperGroup's would build every command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of ``gridctl --help`` from the summaries, without importing a command module."""
        rows = [(name, commands.summary(name)) for name in self.list_commands(ctx) if name in commands.COMMANDS]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GridctlError as exc:
            from gridctl.cli import console

            console.error(exc.message)
            raise typer.Exit(exit_codes.for_error(exc.code, exc.status)) from None
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, exits, Ctrl-C: Typer's own
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # `gridctl ... | head`: the reader left; main() ends quietly
                raise
            _unexpected(exc)
        except Exception as exc:  # last resort: one line, the details only on request
            _unexpected(exc)


def _unexpected(exc: Exception) -> NoReturn:
    if os.environ.get("GRIDCTL_DEBUG"):
        raise exc
    from gridctl.cli import console

    console.error(f"unexpected {type(exc).__name__}: {exc} (set GRIDCTL_DEBUG=1 for the traceback)")
    raise typer.Exit(exit_codes.ERROR) from None


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gridctl")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gridctl {installed_version()}")
        raise typer.Exit()


app = typer.Typer(
    name="gridctl",
    cls=GridctlGroup,
    help="Deploy and administer gridctl Nodes: private data, DP training, release approvals.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    context: str | None = typer.Option(
        None, "--context", envvar="GRIDCTL_CONTEXT", help="Saved context to use instead of the current one."
    ),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the installed version of gridctl and exit."),
) -> None:
    """Deploy and administer gridctl Nodes: private data, DP training, release approvals."""
    os.environ["GRIDCTL_CONTEXT"] = context or ""
    # Each invocation starts from table output (--output changes it). Only an earlier invocation in this process
    # (tests) can have changed it; importing the console for nothing would cost `--help` its Rich import.
    console = sys.modules.get("gridctl.cli.console")
    if console is not None:
        console.set_output(console.Output.table)


def main() -> None:
    try:
        try:
            app(prog_name="gridctl")
        finally:
            sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored ... BrokenPipeError" at exit
    except BrokenPipeError:
        # `gridctl ... | head`: the reader is gone. Stop quietly, as other Unix tools do; point stdout at
        # /dev/null so that Python's own flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(exit_codes.ERROR)
