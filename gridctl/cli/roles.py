"""``gridctl roles``: named sets of capabilities. A role is named by name or id."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption, YesOption

app = typer.Typer(help="Manage roles: preset and custom sets of capabilities.", no_args_is_help=True)

COLUMNS = ["id", "name", "preset", "user_count", "capabilities", "description"]
RoleArg = Annotated[str, typer.Argument(metavar="ROLE", help="Name or id.", show_default=False)]
CAPABILITY_HELP = ("A capability, e.g. manage_users (repeat, or separate with commas). See 'gridctl roles "
                   "show Owner' for the full list.")


def _show(role: dict[str, Any]) -> None:
    console.emit(role, columns=COLUMNS)


@app.command("list")
def list_roles(output: OutputOption = None) -> None:
    """List roles with their capabilities and how many users hold each."""
    console.emit(common.connect(output).roles.list(), columns=COLUMNS)


@app.command("show")
def show(role: RoleArg, output: OutputOption = None) -> None:
    """Show one role."""
    _show(common.connect(output).roles.get(role))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The new role's name (not all digits).", show_default=False)],
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help=CAPABILITY_HELP,
                                                         show_default=False)] = None,
    description: Annotated[str | None, typer.Option(help="What the role is for.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Add a custom role. You can only grant capabilities you hold yourself.

    Capabilities may be repeated (-c a -c b) or comma-separated (-c view_statistics,triage_requests).
    """
    node = common.connect(output)
    role = node.roles.create(name, common.split_values(capability) or [], description=description)
    console.message(f"role {role['name']} created")
    _show(role)


@app.command("update")
def update(
    role: RoleArg,
    name: Annotated[str | None, typer.Option(help="New name.", show_default=False)] = None,
    description: Annotated[str | None, typer.Option(help="New description.", show_default=False)] = None,
    capability: Annotated[list[str] | None, typer.Option(
        "--capability", "-c", help="Replace the capabilities with these (repeat, or separate with commas).",
        show_default=False)] = None,
    grant: Annotated[list[str] | None, typer.Option("--grant", help="Add these capabilities.",
                                                    show_default=False)] = None,
    revoke: Annotated[list[str] | None, typer.Option("--revoke", help="Take these capabilities away.",
                                                     show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Rename a custom role, or change its description or capabilities (presets cannot change).

    -c replaces the set of capabilities; --grant and --revoke change it.
    """
    capabilities, added, taken = (common.split_values(v) for v in (capability, grant, revoke))
    if capabilities is not None and (added or taken):
        raise typer.BadParameter("--capability replaces the set: do not combine it with --grant or --revoke")
    if name is None and description is None and capabilities is None and not added and not taken:
        raise typer.BadParameter("nothing to change: give --name, --description, --capability, --grant or "
                                 "--revoke")
    node = common.connect(output)
    if added or taken:
        current = node.roles.get(role)["capabilities"]
        capabilities = sorted((set(current) | set(added or [])) - set(taken or []))
    updated = node.roles.update(role, name=name, description=description, capabilities=capabilities)
    console.message(f"role {updated['name']} updated")
    _show(updated)


@app.command("remove")
def remove(role: RoleArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a custom role that no user holds (one in use: exit 6)."""
    node = common.connect(output)
    common.confirm(f"Delete role {role}?", yes=yes)
    node.roles.remove(role)
    common.removed("role", role)
