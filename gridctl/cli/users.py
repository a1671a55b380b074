"""``gridctl users``: accounts, their role and their privacy budget ε. A user is named by email or id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption, YesOption

if TYPE_CHECKING:
    from gridctl.sdk.node import Node

app = typer.Typer(help="Manage users: add, list, update, disable, remove, set budgets.", no_args_is_help=True)

LIST_COLUMNS = ["id", "email", "full_name", "role", "budget_epsilon", "disabled", "groups"]
DETAIL_FIELDS = ["id", "email", "full_name", "role", "capabilities", "budget_epsilon", "disabled", "groups",
                 "created_at"]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="Email or id.", show_default=False)]


def _show(user: dict[str, Any]) -> None:
    console.emit(user if console.output() is console.Output.json else common.flatten(user),
                 columns=DETAIL_FIELDS)


def _password(value: str | None, *, prompt: str) -> str:
    if value is not None:
        return value
    return common.secret(prompt, twice=True)


def _existing_role(node: Node, role: str) -> str:
    """The role's name; an unknown role fails as 'roles show' does (not found, exit 5), before anything changes."""
    return str(node.roles.get(role)["name"])


@app.command("list")
def list_users(
    role: Annotated[str | None, typer.Option(help="Only users with this role (name or id).")] = None,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled", help="Only disabled, or only enabled, "
                                                  "accounts.", show_default=False)] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Email or name contains this.")] = None,
    group: Annotated[str | None, typer.Option(help="Only members of this group (name or id).")] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List users, with filters."""
    node = common.connect(output)
    page = node.users.page(role=role, disabled=disabled, q=search, group=group, limit=limit, offset=offset)
    items = page["items"]
    console.emit(items if console.output() is console.Output.json else [common.flatten(u) for u in items],
                 columns=LIST_COLUMNS)
    console.page_note(page)


@app.command("show")
def show(user: UserArg, output: OutputOption = None) -> None:
    """Show one user: role, capabilities, budget, groups."""
    _show(common.connect(output).users.get(user))


@app.command("me")
def me(output: OutputOption = None) -> None:
    """Show the logged-in user ('gridctl budget' shows the ε you spent and have left)."""
    _show(common.connect(output).users.me())
    if console.output() is console.Output.table:
        console.hint("ε spent and remaining: gridctl budget")


@app.command("add")
def add(
    email: Annotated[str, typer.Option(help="The new user's email (their login).", show_default=False)],
    password: Annotated[str | None, typer.Option(help="Initial password; prompted for (hidden, twice) when "
                                                 "not given.", show_default=False)] = None,
    role: Annotated[str | None, typer.Option(help="Role name or id (default: Data Scientist).",
                                             show_default=False)] = None,
    budget: Annotated[float | None, typer.Option(min=0, metavar="EPS", help="Total privacy budget ε "
                                                 "(needs manage_budgets).", show_default=False)] = None,
    full_name: Annotated[str | None, typer.Option(help="Display name.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Add a user (a Data Scientist unless --role says otherwise).

    The password is prompted for (hidden, twice) when not given. A budget needs manage_budgets; a role can be
    given only if you hold all its capabilities. An unknown role fails as 'gridctl roles show' does (exit 5),
    before anything is created.
    """
    node = common.connect(output)
    if role is not None:
        role = _existing_role(node, role)
    secret = _password(password, prompt=f"Password for {email}")
    user = node.users.create(email, secret, full_name=full_name, role=role, budget_epsilon=budget)
    console.message(f"user {user['email']} created (id {user['id']}, role {user['role']['name']})")
    _show(user)


@app.command("update")
def update(
    user: UserArg,
    email: Annotated[str | None, typer.Option(help="New email.", show_default=False)] = None,
    full_name: Annotated[str | None, typer.Option(help="New display name.", show_default=False)] = None,
    role: Annotated[str | None, typer.Option(help="New role (name or id).", show_default=False)] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable", help="Enable or disable the account.",
                                                show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Change a user's email, name, role, or enabled state."""
    node = common.connect(output)
    if email is None and full_name is None and role is None and enable is None:
        raise typer.BadParameter("nothing to change: give --email, --full-name, --role, --enable or --disable")
    if role is not None:
        role = _existing_role(node, role)
    updated = node.users.update(user, email=email, full_name=full_name, role=role,
                                disabled=None if enable is None else not enable)
    console.message(f"user {updated['email']} updated")
    _show(updated)


@app.command("disable")
def disable(user: UserArg, output: OutputOption = None) -> None:
    """Disable a user: they cannot log in and their tokens stop working (undo: update --enable)."""
    updated = common.connect(output).users.disable(user)
    console.message(f"user {updated['email']} disabled")
    _show(updated)


@app.command("remove")
def remove(user: UserArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a user. The Owner cannot be removed, nor can you remove yourself."""
    node = common.connect(output)
    common.confirm(f"Delete user {user}?", yes=yes)
    node.users.remove(user)
    common.removed("user", user)


@app.command("set-budget")
def set_budget(
    user: UserArg,
    epsilon: Annotated[float, typer.Argument(metavar="EPS", min=0, help="Total privacy budget ε (>= 0).",
                                             show_default=False)],
    output: OutputOption = None,
) -> None:
    """Set a user's total privacy budget ε (needs manage_budgets)."""
    updated = common.connect(output).users.set_budget(user, epsilon)
    console.message(f"budget of {updated['email']} set to ε = {updated['budget_epsilon']}")
    _show(updated)


@app.command("reset-password")
def reset_password(
    user: UserArg,
    password: Annotated[str | None, typer.Option(help="The new password; prompted for when not given.",
                                                 show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Set another user's password; their sessions are logged out."""
    node = common.connect(output)
    node.users.reset_password(user, _password(password, prompt=f"New password for {user}"))
    if console.output() is console.Output.json:
        console.emit({"password_reset": user})
    else:
        console.message(f"password of {user} reset; their sessions are logged out")
