"""``gridctl requests``: requests of every kind (access, release, budget), their decisions and history.

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

app = typer.Typer(help="File, follow and decide requests (access, release, budget).", no_args_is_help=True)
policies_app = typer.Typer(help="Officers' standing release policies (auto-approve small releases).",
                           no_args_is_help=True)
ask_app = typer.Typer(help="File a request: 'gridctl requests ask access --tensor ID --level download "
                      "--reason TEXT'.", no_args_is_help=True)
app.add_typer(ask_app, name="ask")
app.add_typer(policies_app, name="policies")

LIST_COLUMNS = ["id", "kind", "state", "requester_email", "target", "level", "epsilon", "reason", "created_at",
                "decision_note"]
DETAIL_FIELDS = ["id", "kind", "state", "requester_email", "target", "level", "epsilon", "sha256", "reason",
                 "created_at", "expires_at", "decided_at", "decided_by", "decision_note"]
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
    payload = request.get("payload") or {}
    if request.get("target_type"):
        row["target"] = f"{request['target_type']} {request['target_id']}"
    row["level"] = payload.get("level")
    if request.get("kind") == "release":
        row["epsilon"] = "∞ (not private)" if payload.get("non_private") else payload.get("epsilon")
        row["sha256"] = payload.get("sha256")
    elif request.get("kind") == "budget":
        row["epsilon"] = payload.get("additional_epsilon")
    return row


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """A one-line terminal chart of ``values`` (e.g. the loss per epoch)."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1) + 0.5))] for v in values)


def _eps(value: Any) -> str:
    return "∞ (not private)" if value is None else f"{value:.4g}"


def show_card(card: dict[str, Any]) -> None:
    """The release cost card, for officers: cost, budgets before and after, model, metrics, history."""
    user, dataset = card["user"], card.get("dataset")
    summary = {
        "mechanism": card["mechanism"],
        "non-private": card["non_private"],
        "this request's ε": f"{_eps(card['epsilon'])} at δ {card['delta']:g}",
        "fingerprint": card.get("sha256"),
        f"user {user['email']}: ε spent": f"{user['epsilon_before']:.4g} -> {_eps(user['epsilon_after'])} "
                                          f"of {user['cap_epsilon']:g} (simple sum {user['simple_sum_before']:.4g}"
                                          f" -> {_eps(user['simple_sum_after'])})",
        "user: remaining ε": f"{user['remaining_before']:.4g} -> {_eps(user['remaining_after'])}",
        "within the user's budget": user["within_cap"],
        "reading": card["reading"],
        "rule": f"Rényi filter at order {card['rdp_order']:g}; release policy {card['release_policy']}",
    }
    if dataset:
        cap = "no cap" if dataset["cap_epsilon"] is None else f"cap {dataset['cap_epsilon']:g}"
        summary[f"dataset {dataset['name'] or dataset['id']}: ε spent"] = (
            f"{dataset['epsilon_before']:.4g} -> {_eps(dataset['epsilon_after'])} ({cap})")
    console.emit(summary, title="cost card")
    if card.get("settings"):
        console.emit({k: v for k, v in card["settings"].items()}, title="settings")
    if card.get("layers"):
        console.emit(card["layers"], columns=["index", "layer", "args", "output_shape", "parameters"],
                     title="model")
    metrics = card.get("metrics") or []
    if metrics:
        columns = list(dict.fromkeys(k for row in metrics for k in row))
        console.emit(metrics, columns=columns, title="training metrics (officers only)")
        for key in columns:
            series = [float(row[key]) for row in metrics if isinstance(row.get(key), int | float)]
            if key not in ("epoch", "step") and len(series) > 1:
                console.message(f"{key:>10} {sparkline(series)}  {series[0]:.4g} -> {series[-1]:.4g}")
    if card.get("history"):
        console.emit(card["history"], columns=["id", "kind", "state", "epsilon", "created_at", "decision_note"],
                     title="the requester's history")


def show_request(request: dict[str, Any]) -> None:
    if console.output() is console.Output.json:
        console.emit(request)
        return
    console.emit(_row(request), columns=DETAIL_FIELDS)
    if request.get("events"):
        console.emit(request["events"], columns=EVENT_COLUMNS, title="history")
    if request.get("card"):
        show_card(request["card"])


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
    fingerprint: Annotated[str | None, typer.Option("--fingerprint", metavar="SHA256", help="Release: the sha256 "
                                                    "you inspected; refused if the artifact changed.",
                                                    show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Approve a pending request (access: the requester gets the level; release: the budget is re-checked and
    debited; budget: the requester's budget grows by what they asked)."""
    decided = common.connect(output).requests.approve(request, note=note, fingerprint=fingerprint)
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


@ask_app.command("release")
def ask_release(
    result: Annotated[int | None, typer.Option("--result", metavar="ID", help="A result of yours.",
                                               show_default=False)] = None,
    tensor: TensorTarget = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (the officer reads it).",
                                               show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Ask to download a result or a private tensor; the Node computes its privacy cost and may decide at once."""
    if (result is None) == (tensor is None):
        raise typer.BadParameter("give exactly one of --result and --tensor")
    node = common.connect(output)
    request = node.requests.ask_release(result=result, tensor=tensor, reason=reason)
    console.message(f"request {request.id} filed: release of {request.target_type} {request.target_id} "
                    f"({request.status})" + (f": {request.decision_note}" if request.decision_note else ""))
    show_request(request.data)


@ask_app.command("budget")
def ask_budget(
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="How much more ε you ask for.",
                                           show_default=False)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (the officer reads it).", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Ask for more privacy budget; a holder of manage_budgets decides."""
    request = common.connect(output).requests.ask_budget(epsilon, reason)
    console.message(f"request {request.id} filed: ε {epsilon:g} more ({request.status})")
    show_request(request.data)


@app.command("wait")
def wait(
    request: RequestArg,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up after this many seconds.",
                                                  show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Wait until a request is decided, then show it."""
    decided = common.connect(output).requests.wait(request, timeout)
    show_request(decided.data)


@app.command("watch")
def watch(
    kind: Annotated[Kind | None, typer.Option("--kind", help="Only requests of this kind.",
                                              show_default=False)] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 2.0,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop after this many seconds "
                                                  "(default: until interrupted).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Print new pending requests as they arrive (officers), polling the Node; one line (or JSON) each."""
    import time

    node = common.connect(output)
    seen = {r["id"] for r in node.requests.list(status="pending", kind=kind.value if kind else None, limit=500)}
    console.message(f"watching for new pending requests ({len(seen)} already pending); Ctrl-C to stop")
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
            fresh = [r for r in node.requests.list(status="pending", kind=kind.value if kind else None, limit=500)
                     if r["id"] not in seen]
            for request in sorted(fresh, key=lambda r: r["id"]):
                seen.add(request["id"])
                console.emit(request if console.output() is console.Output.json else [_row(request)],
                             columns=LIST_COLUMNS)
    except KeyboardInterrupt:
        pass


POLICY_COLUMNS = ["id", "action", "dataset_id", "max_epsilon", "note", "created_by", "created_at"]


@policies_app.command("list")
def list_policies(output: OutputOption = None) -> None:
    """The release policies applied when a release request is created (triage_requests)."""
    console.emit(common.connect(output).http.get("/release-policies"), columns=POLICY_COLUMNS)


@policies_app.command("add")
def add_policy(
    max_epsilon: Annotated[float, typer.Option("--max-epsilon", help="Auto-approve private releases costing at "
                                               "most this ε (within the budget).", show_default=False)],
    dataset: Annotated[int | None, typer.Option("--dataset", metavar="ID", help="Only releases from this dataset "
                                                "(default: any).", show_default=False)] = None,
    note: Annotated[str, typer.Option("--note", help="Why, for the other officers.")] = "",
    output: OutputOption = None,
) -> None:
    """Add an auto-approve policy (triage_requests)."""
    policy = common.connect(output).http.post("/release-policies", json={"max_epsilon": max_epsilon,
                                                                        "dataset_id": dataset, "note": note})
    console.message(f"release policy {policy['id']} added")
    console.emit(policy, columns=POLICY_COLUMNS)


@policies_app.command("remove")
def remove_policy(policy: Annotated[int, typer.Argument(metavar="ID", help="The policy's id.")],
                  output: OutputOption = None) -> None:
    """Remove a release policy (triage_requests)."""
    common.connect(output).http.delete(f"/release-policies/{policy}")
    console.message(f"release policy {policy} removed")
