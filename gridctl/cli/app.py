"""The root ``gridctl`` app: one Typer app per noun, global options, and the one error wrapper."""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

from gridctl.cli import console, exit_codes
from gridctl.sdk.errors import GridctlError

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 other error, 2 usage, 3 auth (not logged in, bad or expired token, wrong password), "
    "4 forbidden, 5 not found, 6 conflict (already exists, in use, budget), 7 invalid input, "
    "8 server error, 9 connection error. See docs/cli.md.\n\n"
    "Environment: GRIDCTL_URL and GRIDCTL_TOKEN select a Node and a token instead of the saved context (for "
    "CI); GRIDCTL_HOME holds the contexts file (default ~/.config/gridctl); GRIDCTL_DEBUG=1 shows tracebacks."
)


class GridctlGroup(TyperGroup):
    """Turns every error into one readable line and a documented exit code; never a traceback."""

    def list_commands(self, ctx: Any) -> list[str]:
        from gridctl.cli.commands import HELP_ORDER

        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: HELP_ORDER.index(n) if n in HELP_ORDER else len(HELP_ORDER))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GridctlError as exc:
            console.error(exc.message)
            raise typer.Exit(exit_codes.for_error(exc.code, exc.status)) from None
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, exits, Ctrl-C: Typer's own
            raise
        except Exception as exc:  # last resort: one line, the details only on request
            if os.environ.get("GRIDCTL_DEBUG"):
                raise
            console.error(f"unexpected {type(exc).__name__}: {exc} (set GRIDCTL_DEBUG=1 for the traceback)")
            raise typer.Exit(exit_codes.ERROR) from None


app = typer.Typer(
    name="gridctl",
    cls=GridctlGroup,
    help="Deploy and administer gridctl Nodes: private data, DP training, release approvals.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    context: str | None = typer.Option(
        None, "--context", envvar="GRIDCTL_CONTEXT", help="Saved context to use instead of the current one."
    ),
) -> None:
    """Deploy and administer gridctl Nodes: private data, DP training, release approvals."""
    os.environ["GRIDCTL_CONTEXT"] = context or ""
    console.set_output(console.Output.table)  # each invocation starts from the default; --output changes it


def _register() -> None:
    # Each noun module defines ``app`` (a Typer) or ``register(root)`` for top-level commands.
    from gridctl.cli import commands

    for name, module in commands.modules():
        if hasattr(module, "register"):
            module.register(app)
        else:
            app.add_typer(module.app, name=name)


_register()


def main() -> None:
    app(prog_name="gridctl")
