"""``gridctl datasets``: named collections of tensors (``features``, ``labels``...) with declared bounds.

A dataset is named by name or id; its members by role. ``remove`` takes members out; ``delete`` deletes the
dataset (its tensors stay).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption, YesOption

app = typer.Typer(help="Create and manage datasets: named collections of tensors.", no_args_is_help=True)

LIST_COLUMNS = ["id", "name", "visibility", "tags", "members", "level", "created_at"]
DETAIL_FIELDS = ["id", "name", "description", "visibility", "tags", "members", "bounds", "owner_id", "created_at",
                 "level"]

DatasetArg = Annotated[str, typer.Argument(metavar="DATASET", help="Name or id.", show_default=False)]
MemberOption = Annotated[list[str] | None, typer.Option("--tensor", metavar="ROLE=ID", help="A member: its role "
                                                        "and a tensor id you uploaded, e.g. features=3 (repeat).",
                                                        show_default=False)]


def _row(dataset: dict[str, Any]) -> dict[str, Any]:
    row = dict(dataset)
    row["members"] = [f"{m['role']}={m['tensor_id']}" for m in dataset.get("members") or []]
    return row


def show_dataset(dataset: dict[str, Any]) -> None:
    console.emit(dataset if console.output() is console.Output.json else _row(dataset), columns=DETAIL_FIELDS)


def parse_members(values: list[str] | None) -> dict[str, int]:
    """``["features=3", "labels=4"]`` -> ``{"features": 3, "labels": 4}``; a usage error names a bad one."""
    members: dict[str, int] = {}
    for value in values or []:
        role, sep, tensor = value.partition("=")
        role, tensor = role.strip(), tensor.strip()
        if not sep or not role or not tensor.isdigit():
            raise typer.BadParameter(f"{value!r} is not ROLE=ID (e.g. features=3)", param_hint="--tensor")
        if role in members:
            raise typer.BadParameter(f"role {role!r} given twice", param_hint="--tensor")
        members[role] = int(tensor)
    return members


def _numbers(text: str, spec: str) -> float | list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{spec!r}: {text!r} is not a number or a comma-separated list of numbers",
                                 param_hint="ROLE=LOWER:UPPER") from None
    return values[0] if len(values) == 1 else values


def parse_bounds(values: list[str]) -> dict[str, dict[str, Any]]:
    """``["features=0:1", "labels=0,0:9,255"]`` -> ``{"features": {"lower": 0.0, "upper": 1.0}, ...}``."""
    bounds: dict[str, dict[str, Any]] = {}
    for value in values:
        role, sep, rest = value.partition("=")
        lower, colon, upper = rest.partition(":")
        if not sep or not role.strip() or not colon or not lower.strip() or not upper.strip():
            raise typer.BadParameter(f"{value!r} is not ROLE=LOWER:UPPER (e.g. features=0:1 or "
                                     "features=0,0:1,255)", param_hint="ROLE=LOWER:UPPER")
        bounds[role.strip()] = {"lower": _numbers(lower.strip(), value), "upper": _numbers(upper.strip(), value)}
    return bounds


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The dataset's name (letters, digits, _ . -; not all digits).",
                                        show_default=False)],
    tensor: MemberOption = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat, or separate with commas).",
                                                  show_default=False)] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="What the dataset holds.",
                                                    show_default=False)] = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Who may download it by default "
                                                "(default: private).", show_default=False)] = None,
    from_csv: Annotated[Path | None, typer.Option("--from-csv", exists=True, dir_okay=False, readable=True,
                                                  metavar="FILE", help="Build it from one CSV: the --label column "
                                                  "becomes 'labels', the others 'features'.",
                                                  show_default=False)] = None,
    label: Annotated[str | None, typer.Option("--label", metavar="COLUMN", help="The CSV's label column (with "
                                              "--from-csv).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Create a dataset from tensors you uploaded (--tensor ROLE=ID ...) or from one CSV (--from-csv).

    --tensor features=3 --tensor labels=4 names the members. --from-csv FILE --label COLUMN streams one CSV: the
    label column becomes 'labels', the other columns 'features' (float32, names kept). Private unless --public.
    """
    visibility = None if public is None else ("public" if public else "private")
    tags = common.split_values(tag)
    if from_csv is not None:
        if tensor:
            raise typer.BadParameter("give --tensor or --from-csv, not both")
        if not label:
            raise typer.BadParameter("--from-csv needs --label COLUMN")
        node = common.connect(output)
        with console.transfer_progress(f"uploading {from_csv.name}") as progress:
            pointer = node.datasets.create_from_csv(from_csv, name, label=label, description=description, tags=tags,
                                                    visibility=visibility, progress=progress)
    else:
        if label is not None:
            raise typer.BadParameter("--label goes with --from-csv")
        members = parse_members(tensor)
        if not members:
            raise typer.BadParameter("give the members (--tensor ROLE=ID ...) or --from-csv FILE --label COLUMN")
        node = common.connect(output)
        pointer = node.datasets.create(name, members, description=description, tags=tags, visibility=visibility)
    dataset = pointer.metadata
    roles = ", ".join(f"{m['role']}={m['tensor_id']}" for m in dataset.get("members") or [])
    console.message(f"dataset {dataset['name']} created (id {dataset['id']}; {roles})")
    show_dataset(dataset)


@app.command("list")
def list_datasets(
    search: Annotated[str | None, typer.Option("--search", "-s", help="Name or description contains this.",
                                               show_default=False)] = None,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only datasets with this tag.",
                                            show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List datasets by name, with their members and your level on each."""
    page = common.connect(output).datasets.page(q=search, tag=tag, limit=limit, offset=offset)
    items = page["items"]
    console.emit(items if console.output() is console.Output.json else [_row(d) for d in items],
                 columns=LIST_COLUMNS)
    console.page_note(page)


@app.command("show")
def show(dataset: DatasetArg, output: OutputOption = None) -> None:
    """Show a dataset: members, declared bounds, your level."""
    show_dataset(common.connect(output).datasets.get(dataset))


@app.command("add")
def add(
    dataset: DatasetArg,
    tensor: Annotated[list[str], typer.Option("--tensor", metavar="ROLE=ID", help="A member to add: its role and "
                                              "a tensor id you uploaded (repeat). Replaces what held the role.",
                                              show_default=False)],
    output: OutputOption = None,
) -> None:
    """Add tensors you uploaded to a dataset, each under a role.

    A role that is taken is replaced, with its bounds.
    """
    members = parse_members(tensor)
    node = common.connect(output)
    updated: dict[str, Any] = {}
    for role, tensor_id in members.items():
        updated = node.datasets.add(dataset, role, tensor_id)
    console.message(f"dataset {updated['name']}: {', '.join(_row(updated)['members']) or 'no members'}")
    show_dataset(updated)


@app.command("remove")
def remove(
    dataset: DatasetArg,
    roles: Annotated[list[str], typer.Argument(metavar="ROLE", help="Roles to take out (the tensors stay).",
                                               show_default=False)],
    output: OutputOption = None,
) -> None:
    """Take members out of a dataset, by role; the tensors themselves stay."""
    node = common.connect(output)
    updated: dict[str, Any] = {}
    for role in roles:
        updated = node.datasets.remove_member(dataset, role)
    console.message(f"dataset {updated['name']}: {', '.join(_row(updated)['members']) or 'no members'}")
    show_dataset(updated)


@app.command("set-bounds")
def set_bounds(
    dataset: DatasetArg,
    bounds: Annotated[list[str], typer.Argument(metavar="ROLE=LOWER:UPPER", help="Bounds of a member's columns: "
                                                "one number for all (features=0:1) or one per column "
                                                "(features=0,0:1,255).", show_default=False)],
    replace: Annotated[bool, typer.Option("--replace", help="Drop the bounds of roles not named here (default: "
                                          "keep them).")] = False,
    output: OutputOption = None,
) -> None:
    """Declare per-column bounds (used by DP statistics); never derived from the data.

    One number for every column (features=0:1) or one per column (features=0,0:1,255). Bounds of roles not named
    are kept unless --replace. Declare them from what you know of the data's domain, never from the data.
    """
    declared = parse_bounds(bounds)
    node = common.connect(output)
    merged = declared if replace else {**node.datasets.get(dataset).get("bounds", {}), **declared}
    updated = node.datasets.set_bounds(dataset, merged)
    console.message(f"dataset {updated['name']}: bounds declared for {', '.join(sorted(updated['bounds'])) or '-'}")
    show_dataset(updated)


@app.command("delete")
def delete(dataset: DatasetArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a dataset; its tensors stay."""
    node = common.connect(output)
    common.confirm(f"Delete dataset {dataset}? (its tensors stay)", yes=yes)
    node.datasets.remove(dataset)
    common.removed("dataset", dataset)
