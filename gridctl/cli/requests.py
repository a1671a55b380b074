"""``gridctl requests``: requests of every kind (``access`` today), their decisions and their history.

Anyone files requests (``gridctl requests ask KIND ...``) and sees their own; officers (triage_requests) see
every request and approve or deny them. States: pending -> approved | denied | withdrawn | expired; decided
requests never change again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption
from gridctl.cli.permissions import DatasetTarget, TensorTarget, one_target

app = typer.Typer(help="File, follow and decide requests (access; later release and budget).",
                  no_args_is_help=True)
ask_app = typer.Typer(help="File a request: 'gridctl requests ask access --tensor ID --level download "
                      "--reason TEXT'.", no_args_is_help=True)
app.add_typer(ask_app, name="ask")

LIST_COLUMNS = ["id", "kind", "state", "requester_email", "target", "level", "reason", "created_at",
                "decision_note"]
DETAIL_FIELDS = ["id", "kind", "state", "requester_email", "target", "level", "reason", "created_at",
                 "expires_at", "decided_at", "decided_by", "decision_note"]
EVENT_COLUMNS = ["at", "from_state", "to_state", "actor_id", "note"]

RequestArg = Annotated[int, typer.Argument(metavar="ID", help="The request's id.", show_default=False)]


class State(StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"
    withdrawn = "withdrawn"
    expired = "expired"
    auto_approved = "auto_approved"
    auto_denied = "auto_denied"


class Kind(StrEnum):
    access = "access"
    release = "release"
    budget = "budget"


class AccessLevel(StrEnum):
    compute = "compute"
    download = "download"


def _row(request: dict[str, Any]) -> dict[str, Any]:
    row = dict(request)
    if request.get("target_type"):
        row["target"] = f"{request['target_type']} {request['target_id']}"
    row["level"] = (request.get("payload") or {}).get("level")
    return row


def show_request(request: dict[str, Any]) -> None:
    if console.output() is console.Output.json:
        console.emit(request)
        return
    console.emit(_row(request), columns=DETAIL_FIELDS)
    if request.get("events"):
        console.emit(request["events"], columns=EVENT_COLUMNS, title="history")


@app.command("list")
def list_requests(
    status: Annotated[State | None, typer.Option("--status", help="Only requests in this state.",
                                                 show_default=False)] = None,
    kind: Annotated[Kind | None, typer.Option("--kind", help="Only requests of this kind.",
                                              show_default=False)] = None,
    requester: Annotated[str | None, typer.Option("--requester", metavar="USER", help="Only this user's requests "
                                                  "(email or id).", show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List requests, newest first (officers: every request; others: their own)."""
    node = common.connect(output)
    page = node.requests.page(status=status.value if status else None, kind=kind.value if kind else None,
                              requester=requester, limit=limit, offset=offset)
    items = page["items"]
    console.emit(items if console.output() is console.Output.json else [_row(r) for r in items],
                 columns=LIST_COLUMNS)
    console.page_note(page)


@app.command("show")
def show(request: RequestArg, output: OutputOption = None) -> None:
    """Show a request with its history: every transition, who made it, when, and the note."""
    show_request(common.connect(output).requests.get(request))


@app.command("approve")
def approve(
    request: RequestArg,
    note: Annotated[str | None, typer.Option("--note", help="A note for the requester.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Approve a pending request (access: the requester gets the level on the target)."""
    decided = common.connect(output).requests.approve(request, note=note)
    console.message(f"request {decided['id']} approved")
    show_request(decided)


@app.command("deny")
def deny(
    request: RequestArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (the requester reads it).", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Deny a pending request with a reason."""
    decided = common.connect(output).requests.deny(request, reason)
    console.message(f"request {decided['id']} denied")
    show_request(decided)


@app.command("withdraw")
def withdraw(
    request: RequestArg,
    note: Annotated[str | None, typer.Option("--note", help="Why you withdraw it.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Withdraw your own pending request."""
    withdrawn = common.connect(output).requests.withdraw(request, note=note)
    console.message(f"request {withdrawn['id']} withdrawn")
    show_request(withdrawn)


@ask_app.command("access")
def ask_access(
    level: Annotated[AccessLevel, typer.Option("--level", "-l", help="compute (use it in jobs and statistics) or "
                                               "download (get the raw data).", show_default=False)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why you need it (the officer reads it).",
                                        show_default=False)],
    tensor: TensorTarget = None,
    dataset: DatasetTarget = None,
    output: OutputOption = None,
) -> None:
    """Ask for compute or download on a tensor or dataset; an officer approves or denies."""
    target = one_target(tensor, dataset)
    request = common.connect(output).requests.ask_access(level=level.value, reason=reason, **target)
    console.message(f"request {request.id} filed: {request.level} on {request.target_type} {request.target_id} "
                    f"({request.status}); follow it with 'gridctl requests show {request.id}'")
    show_request(request.data)
