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
from gridctl.sdk.errors import GridctlError

app = typer.Typer(help="File, follow and decide requests (access, release, budget).", no_args_is_help=True)
policies_app = typer.Typer(help="Officers' standing release policies (auto-approve small releases).",
                           no_args_is_help=True)
ask_app = typer.Typer(help="File a request: 'gridctl requests ask access --tensor ID --level download "
                      "--reason TEXT'.", no_args_is_help=True)
app.add_typer(ask_app, name="ask")
app.add_typer(policies_app, name="policies")

LIST_COLUMNS = ["id", "kind", "state", "requester_email", "target", "epsilon", "reason", "created_at"]
DETAIL_FIELDS = ["id", "kind", "state", "requester_email", "target", "level", "epsilon", "fingerprint", "reason",
                 "created_at", "expires_at", "decided_at", "decided_by", "decision_note"]
EVENT_COLUMNS = ["at", "from_state", "to_state", "actor", "note"]

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


def _row(request: dict[str, Any], names: common.Names | None = None) -> dict[str, Any]:
    """A request for a table: its target by name (``dataset cohort``) where ``names`` can say."""
    row = dict(request)
    payload = request.get("payload") or {}
    if request.get("target_type"):
        row["target"] = (names.target(request["target_type"], request["target_id"]) if names
                         else f"{request['target_type']} {request['target_id']}")
    row["level"] = payload.get("level")
    if row["level"]:
        row["kind"] = f"{request.get('kind')} ({row['level']})"
    if request.get("kind") == "release":
        row["epsilon"] = "∞ (not private)" if payload.get("non_private") else payload.get("epsilon")
        row["fingerprint"] = payload.get("fingerprint")  # officers only: the Node leaves it out for others
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
        "fingerprint": card.get("fingerprint"),
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


def show_request(request: dict[str, Any], names: common.Names | None = None) -> None:
    if console.output() is console.Output.json:
        console.emit(request)
        return
    row = _row(request, names)
    if names and request.get("decided_by") is not None:
        row["decided_by"] = names.user(request["decided_by"])
    console.emit(row, columns=DETAIL_FIELDS)
    if request.get("events"):
        events = [{**e, "actor": names.user(e.get("actor_id")) if names else e.get("actor_id")}
                  for e in request["events"]]
        console.emit(events, columns=EVENT_COLUMNS, title="history")
    if request.get("card"):
        show_card(request["card"])


def _filed(request: dict[str, Any], names: common.Names | None = None) -> None:
    """Show a request just filed; one the Node denied at once (``auto_denied``) exits DENIED (10) with why."""
    show_request(request, names)
    if request.get("state") == "auto_denied":
        raise GridctlError("request_denied", f"request {request['id']} was denied at once: "
                           f"{request.get('decision_note') or 'no reason given'}")


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
    names = common.Names(node)
    rows = [] if console.output() is console.Output.json else [_row(r, names) for r in items]
    console.emit_items(items, rows=rows, columns=LIST_COLUMNS, page=page)


@app.command("show")
def show(request: RequestArg, output: OutputOption = None) -> None:
    """Show a request with its history: every transition, who made it, when, and the note.

    For a release, officers also see the cost card: mechanism and settings, the request's own ε, the user's and
    the dataset's ε before and after with the remaining budget, the requester's history, the model's layer table,
    the training metrics with a small chart of each, and a plain reading of ε.
    """
    node = common.connect(output)
    show_request(node.requests.get(request), common.Names(node))


@app.command("approve")
def approve(
    request: RequestArg,
    note: Annotated[str | None, typer.Option("--note", help="A note for the requester.", show_default=False)] = None,
    fingerprint: Annotated[str | None, typer.Option("--fingerprint", metavar="HMAC", help="Release: the "
                                                    "fingerprint you inspected on the cost card; refused if the "
                                                    "artifact changed.",
                                                    show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Approve a pending request (access: the requester gets the level; release: the budget is re-checked and
    debited; budget: the requester's budget grows by what they asked).

    Needs triage_requests (budget requests: manage_budgets). For access, an existing grant is raised, never
    lowered. For a release the budget is re-checked and debited in the same transaction (exit 6 budget_exceeded
    if it no longer fits; the request stays pending), and --fingerprint refuses (exit 6) if the artifact is not the
    one you inspected.
    """
    node = common.connect(output)
    decided = node.requests.approve(request, note=note, fingerprint=fingerprint)
    console.message(f"request {decided['id']} approved")
    show_request(decided, common.Names(node))


@app.command("deny")
def deny(
    request: RequestArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (the requester reads it).", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Deny a pending request with a reason.

    Needs the capability that decides the kind; the requester reads the reason. A denied release spends nothing.
    """
    node = common.connect(output)
    decided = node.requests.deny(request, reason)
    console.message(f"request {decided['id']} denied")
    show_request(decided, common.Names(node))


@app.command("withdraw")
def withdraw(
    request: RequestArg,
    note: Annotated[str | None, typer.Option("--note", help="Why you withdraw it.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Withdraw your own pending request."""
    node = common.connect(output)
    withdrawn = node.requests.withdraw(request, note=note)
    console.message(f"request {withdrawn['id']} withdrawn")
    show_request(withdrawn, common.Names(node))


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
    """Ask for compute or download on a tensor or dataset; an officer approves or denies.

    Refused (exit 6) if you already have that level, or already have a pending request on the target. In the SDK:
    ptr.request_access("download", reason).
    """
    target = one_target(tensor, dataset)
    node = common.connect(output)
    request = node.requests.ask_access(level=level.value, reason=reason, **target)
    names = common.Names(node)
    console.message(f"request {request.id} filed: {request.level} on "
                    f"{names.target(request.target_type, request.target_id)} ({request.status}); follow it with "
                    f"'gridctl requests show {request.id}'")
    _filed(request.data, names)


@ask_app.command("release")
def ask_release(
    result: Annotated[int | None, typer.Option("--result", metavar="ID", help="A result of yours.",
                                               show_default=False)] = None,
    tensor: TensorTarget = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Why (the officer reads it).",
                                               show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Ask to download a result or a private tensor; the Node computes its privacy cost and may decide at once.

    It may be auto_denied with the reason (over your budget or a dataset's cap; not differentially private under
    the dp_only policy): the request is printed and the command exits 10. It may be auto_approved under an
    officer's policy; otherwise it is pending. In the SDK: result.get() files it (or finds yours) and raises
    ReleaseNotApproved naming the request, its state and the reason; result.get(wait=True, timeout=S) waits.
    """
    if (result is None) == (tensor is None):
        raise typer.BadParameter("give exactly one of --result and --tensor")
    node = common.connect(output)
    request = node.requests.ask_release(result=result, tensor=tensor, reason=reason)
    names = common.Names(node)
    console.message(f"request {request.id} filed: release of {names.target(request.target_type, request.target_id)} "
                    f"({request.status})" + (f": {request.decision_note}" if request.decision_note else ""))
    _filed(request.data, names)


@ask_app.command("budget")
def ask_budget(
    epsilon: Annotated[float, typer.Option("--epsilon", "-e", help="How much more ε you ask for.",
                                           show_default=False)],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (the officer reads it).", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Ask for more privacy budget; a holder of manage_budgets decides.

    Approval raises your budget by what you asked. In the SDK: node.requests.ask_budget(E, reason).
    """
    request = common.connect(output).requests.ask_budget(epsilon, reason)
    console.message(f"request {request.id} filed: ε {epsilon:g} more ({request.status})")
    _filed(request.data)


@app.command("wait")
def wait(
    request: RequestArg,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Give up after this many seconds.",
                                                  show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Wait until a request is decided, then show it.

    Also ends when it is withdrawn or expires; exits 1 (timeout) after --timeout seconds. In the SDK:
    request.wait(timeout).
    """
    node = common.connect(output)
    decided = node.requests.wait(request, timeout)
    show_request(decided.data, common.Names(node))


@app.command("watch")
def watch(
    kind: Annotated[Kind | None, typer.Option("--kind", help="Only requests of this kind.",
                                              show_default=False)] = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 2.0,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop after this many seconds "
                                                  "(default: until interrupted).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Print new pending requests as they arrive (officers), polling the Node; one line (or JSON) each.

    Runs until interrupted or --timeout.
    """
    import time

    node = common.connect(output)
    names = common.Names(node)
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
                console.emit(request if console.output() is console.Output.json else [_row(request, names)],
                             columns=LIST_COLUMNS)
    except KeyboardInterrupt:
        pass


POLICY_COLUMNS = ["id", "action", "dataset", "max_epsilon", "note", "created_by", "created_at"]


def _policy_row(policy: dict[str, Any], names: common.Names) -> dict[str, Any]:
    dataset = policy.get("dataset_id")
    return {**policy, "dataset": "any" if dataset is None else names.dataset(dataset)}


@policies_app.command("list")
def list_policies(output: OutputOption = None) -> None:
    """The release policies applied when a release request is created (triage_requests)."""
    node = common.connect(output)
    policies = node.http.get("/release-policies")
    names = common.Names(node)
    console.emit_items(policies, rows=[] if console.output() is console.Output.json else
                       [_policy_row(p, names) for p in policies], columns=POLICY_COLUMNS)


@policies_app.command("add")
def add_policy(
    max_epsilon: Annotated[float, typer.Option("--max-epsilon", help="Auto-approve private releases costing at "
                                               "most this ε (within the budget).", show_default=False)],
    dataset: Annotated[int | None, typer.Option("--dataset", metavar="ID", help="Only releases from this dataset "
                                                "(default: any).", show_default=False)] = None,
    note: Annotated[str, typer.Option("--note", help="Why, for the other officers.")] = "",
    output: OutputOption = None,
) -> None:
    """Add an auto-approve policy (triage_requests).

    Private releases that cost at most --max-epsilon (on that dataset, or any) and that the budget admits are
    approved when the request is created.
    """
    node = common.connect(output)
    policy = node.http.post("/release-policies", json={"max_epsilon": max_epsilon, "dataset_id": dataset,
                                                       "note": note})
    console.message(f"release policy {policy['id']} added")
    console.emit(policy if console.output() is console.Output.json else _policy_row(policy, common.Names(node)),
                 columns=POLICY_COLUMNS)


@policies_app.command("remove")
def remove_policy(policy: Annotated[int, typer.Argument(metavar="ID", help="The policy's id.")],
                  output: OutputOption = None) -> None:
    """Remove a release policy (triage_requests)."""
    common.connect(output).http.delete(f"/release-policies/{policy}")
    common.removed("release policy", str(policy))
