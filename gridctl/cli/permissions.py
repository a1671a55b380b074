"""``gridctl permissions``: grants of a level (or a deny) to users and groups on tensors and datasets.

Resolution (most specific first): user on tensor, user on dataset, group on tensor, group on dataset, the
object's visibility (public: download, private: search). ``explain`` names the rule that decided.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption

app = typer.Typer(help="Grant, revoke, list and explain permissions on tensors and datasets.", no_args_is_help=True)

COLUMNS = ["id", "subject", "target", "level", "created_at", "updated_at"]
EXPLAIN_FIELDS = ["user", "target", "level", "rule", "grant_id", "explanation"]

# Targets and subjects, shared with ``gridctl requests ask``.
TensorTarget = Annotated[int | None, typer.Option("--tensor", metavar="ID", help="The tensor (id).",
                                                  show_default=False)]
DatasetTarget = Annotated[str | None, typer.Option("--dataset", metavar="DATASET", help="The dataset (name or id).",
                                                   show_default=False)]
UserSubject = Annotated[str | None, typer.Option("--user", metavar="USER", help="The user (email or id).",
                                                 show_default=False)]
GroupSubject = Annotated[str | None, typer.Option("--group", metavar="GROUP", help="The group (name or id).",
                                                  show_default=False)]


class GrantLevel(StrEnum):
    search = "search"
    compute = "compute"
    download = "download"
    deny = "deny"


def one_target(tensor: int | None, dataset: str | None, *, required: bool = True) -> dict[str, Any]:
    """``{"tensor": id}`` or ``{"dataset": ref}``; a usage error unless exactly one was given."""
    if tensor is not None and dataset is not None:
        raise typer.BadParameter("give --tensor or --dataset, not both")
    if tensor is None and dataset is None:
        if required:
            raise typer.BadParameter("name the target: --tensor ID or --dataset DATASET")
        return {}
    return {"tensor": tensor} if tensor is not None else {"dataset": dataset}


def one_subject(user: str | None, group: str | None, *, required: bool = True) -> dict[str, Any]:
    if user is not None and group is not None:
        raise typer.BadParameter("give --user or --group, not both")
    if user is None and group is None:
        if required:
            raise typer.BadParameter("name the subject: --user USER or --group GROUP")
        return {}
    return {"user": user} if user is not None else {"group": group}


def _row(grant: dict[str, Any], names: common.Names) -> dict[str, Any]:
    """A grant for a table: ``user ada@example.com`` on ``dataset cohort``."""
    return {**grant, "subject": f"{grant['subject_type']} {grant.get('subject_name') or grant.get('subject_id')}",
            "target": names.target(grant.get("target_type"), grant.get("target_id"))}


@app.command("grant")
def grant(
    level: Annotated[GrantLevel, typer.Option("--level", "-l", help="search, compute, download, or deny "
                                              "(nothing beyond search).", show_default=False)],
    user: UserSubject = None,
    group: GroupSubject = None,
    tensor: TensorTarget = None,
    dataset: DatasetTarget = None,
    output: OutputOption = None,
) -> None:
    """Grant a level (or a deny) to a user or group on a tensor or dataset; replaces their earlier level.

    Needs manage_permissions. Subjects: --user (email or id) or --group (name or id); targets: --tensor ID or
    --dataset (name or id).
    """
    subject, target = one_subject(user, group), one_target(tensor, dataset)
    node = common.connect(output)
    granted = node.permissions.grant(level.value, **subject, **target)
    row = _row(granted, common.Names(node))
    console.message(f"{row['subject']} has {granted['level']} on {row['target']} (grant {granted['id']})")
    console.emit(granted if console.output() is console.Output.json else row, columns=COLUMNS)


@app.command("revoke")
def revoke(
    grant_id: Annotated[int | None, typer.Argument(metavar="GRANT_ID", help="The grant's id (or name the "
                                                   "subject and the target instead).", show_default=False)] = None,
    user: UserSubject = None,
    group: GroupSubject = None,
    tensor: TensorTarget = None,
    dataset: DatasetTarget = None,
    output: OutputOption = None,
) -> None:
    """Revoke a grant, by id or by subject and target; the subject falls back to the next rule.

    Prints {"removed": "grant", "ref": ID} in JSON.
    """
    node = common.connect(output)
    if grant_id is None:
        found = node.permissions.find(**one_subject(user, group), **one_target(tensor, dataset))
        grant_id = int(found["id"])
    elif user or group or tensor is not None or dataset:
        raise typer.BadParameter("give a grant id, or a subject and a target, not both")
    node.permissions.revoke(grant_id)
    common.removed("grant", str(grant_id))


@app.command("list")
def list_grants(
    user: UserSubject = None,
    group: GroupSubject = None,
    tensor: TensorTarget = None,
    dataset: DatasetTarget = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List grants (without manage_permissions: only those that apply to you)."""
    node = common.connect(output)
    page = node.permissions.page(**one_subject(user, group, required=False),
                                 **one_target(tensor, dataset, required=False), limit=limit, offset=offset)
    names = common.Names(node)
    rows = [] if console.output() is console.Output.json else [_row(g, names) for g in page["items"]]
    console.emit_items(page["items"], rows=rows, columns=COLUMNS, page=page)


@app.command("explain")
def explain(
    tensor: TensorTarget = None,
    dataset: DatasetTarget = None,
    user: Annotated[str | None, typer.Option("--user", metavar="USER", help="Whose level (email or id; others "
                                             "need manage_permissions; default: you).",
                                             show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Explain a user's level on a tensor or dataset: the rule and the grant that decided it.

    JSON: {user_id, target_type, target_id, level, rule, grant_id, explanation}, rule being user_on_tensor,
    user_on_dataset, group_on_tensor, group_on_dataset or visibility.
    """
    node = common.connect(output)
    answer = node.permissions.explain(**one_target(tensor, dataset), user=user)
    if console.output() is console.Output.json:
        console.emit(answer)
        return
    names = common.Names(node)
    console.emit({**answer, "user": user or "you",
                  "target": names.target(answer.get("target_type"), answer.get("target_id"))},
                 columns=EXPLAIN_FIELDS)
