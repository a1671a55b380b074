"""``gridctl groups``: named sets of users. A group is named by name or id; a user by email or id."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption, YesOption

app = typer.Typer(help="Manage groups and their members.", no_args_is_help=True)

COLUMNS = ["id", "name", "member_count", "description", "created_at"]
DETAIL_FIELDS = ["id", "name", "description", "member_count", "members", "created_at"]
GroupArg = Annotated[str, typer.Argument(metavar="GROUP", help="Name or id.", show_default=False)]
UserArg = Annotated[str, typer.Argument(metavar="USER", help="Email or id.", show_default=False)]


def _show(group: dict[str, Any]) -> None:
    if console.output() is console.Output.json:
        console.emit(group)
        return
    row = dict(group)
    if "members" in group:
        row["members"] = [m.get("email") for m in group["members"]]
    console.emit(row, columns=[f for f in DETAIL_FIELDS if f in row])


@app.command("list")
def list_groups(
    search: Annotated[str | None, typer.Option("--search", "-s", help="Name contains this.")] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List groups."""
    page = common.connect(output).groups.page(q=search, limit=limit, offset=offset)
    console.emit(page["items"], columns=COLUMNS)
    console.page_note(page)


@app.command("show")
def show(group: GroupArg, output: OutputOption = None) -> None:
    """Show one group and its members."""
    _show(common.connect(output).groups.get(group))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The new group's name (not all digits).", show_default=False)],
    description: Annotated[str | None, typer.Option(help="What the group is for.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Add a group."""
    created = common.connect(output).groups.create(name, description=description)
    console.message(f"group {created['name']} created")
    _show(created)


@app.command("remove")
def remove(group: GroupArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a group (its members keep their accounts)."""
    node = common.connect(output)
    common.confirm(f"Delete group {group}?", yes=yes)
    node.groups.remove(group)
    common.removed("group", group)


@app.command("add-member")
def add_member(group: GroupArg, user: UserArg, output: OutputOption = None) -> None:
    """Add a user to a group."""
    updated = common.connect(output).groups.add_member(group, user)
    console.message(f"{user} added to group {updated['name']}")
    _show(updated)


@app.command("remove-member")
def remove_member(group: GroupArg, user: UserArg, output: OutputOption = None) -> None:
    """Take a user out of a group."""
    updated = common.connect(output).groups.remove_member(group, user)
    console.message(f"{user} removed from group {updated['name']}")
    _show(updated)
