"""``gridctl tokens``: your named API tokens, for scripts and CI (use one as GRIDCTL_TOKEN)."""

from __future__ import annotations

from typing import Annotated

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption

app = typer.Typer(help="Manage your API tokens for scripts and CI.", no_args_is_help=True)

COLUMNS = ["id", "name", "created_at", "expires_at", "last_used_at", "revoked_at"]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name to recognise the token by.", show_default=False)],
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650, help="Expire after this many days "
                                                        "(default: never).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Create an API token. The secret is shown once (in JSON: "token").

    In table mode the secret is printed on stderr. Use it as GRIDCTL_TOKEN or gridctl.connect(url, token=...).
    """
    created = common.connect(output).tokens.create(name, expires_in_days=expires_in_days)
    if console.output() is console.Output.json:
        console.emit(created)
        return
    console.emit({k: v for k, v in created.items() if k != "token"}, columns=COLUMNS)
    console.secret_notice([f"token: {created['token']}", "use it as GRIDCTL_TOKEN, or with "
                           "gridctl.connect(url, token=...)"])


UserOption = Annotated[str | None, typer.Option("--user", help="Another user's (id or email; needs "
                                                  "manage_users): all their tokens, sessions included.",
                                                  show_default=False)]


@app.command("list")
def list_tokens(user: UserOption = None, output: OutputOption = None) -> None:
    """List your API tokens, or with --user every token of a user (never their secrets)."""
    node = common.connect(output)
    if user is None:
        console.emit(node.tokens.list(), columns=COLUMNS)
    else:
        console.emit(node.tokens.list(user=user), columns=["id", "kind", *COLUMNS[1:]])


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="The token's name or id.", show_default=False)],
    user: UserOption = None,
    output: OutputOption = None,
) -> None:
    """Revoke one of your API tokens, or with --user one of that user's tokens; it stops working at once."""
    revoked = common.connect(output).tokens.revoke(token, user=user)
    console.message(f"token {revoked['name'] or revoked['id']} revoked")
    console.emit(revoked, columns=COLUMNS)
