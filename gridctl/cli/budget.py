"""``gridctl budget``: your privacy budget as the Node enforces it, and your last privacy events.

Spent ε is the Rényi filter's figure (what the Node checks); the simple sum of each event's own ε is shown
beside it for comparison. Remaining ε is the largest single further event the filter admits. Officers with
manage_budgets see anyone's with ``--user``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption

SUMMARY = {
    "user": "email",
    "cap ε": "budget_epsilon",
    "spent ε (Rényi filter, enforced)": "spent_epsilon",
    "spent ε (simple sum, for comparison)": "simple_sum_epsilon",
    "remaining ε (largest next event that fits)": "remaining_epsilon",
    "ceiling ε (highest cap held)": "ceiling_epsilon",
    "events": "events",
    "non-private releases": "non_private_releases",
}
EVENT_COLUMNS = ["at", "epsilon", "mechanism", "dataset", "for", "non_private"]


def mechanism(event: Any) -> str:
    """A short name for a recorded DP event (``DP-SGD, 120 steps``, ``gaussian``)."""
    if not isinstance(event, dict):
        return "-"
    kind = event.get("type")
    inner = event.get("event")
    if kind == "self_composed" and isinstance(inner, dict):
        if inner.get("type") == "poisson_sampled" and (inner.get("event") or {}).get("type") == "gaussian":
            return f"DP-SGD, {event.get('count')} steps"
        return f"{event.get('count')} x {mechanism(inner)}"
    if kind == "poisson_sampled":
        return f"sampled {mechanism(inner)}"
    if kind == "composed":
        return " + ".join(mechanism(e) for e in event.get("events") or [])
    return str(kind or "-")


def _event_row(entry: dict[str, Any], names: common.Names) -> dict[str, Any]:
    what = next((f"{label} {entry[key]}" for key, label in (("job_id", "job"), ("request_id", "request"),
                                                              ("result_id", "result"), ("tensor_id", "tensor"))
                 if entry.get(key) is not None), "-")
    return {"at": entry.get("at"), "epsilon": "∞ (not private)" if entry.get("non_private") else entry.get("epsilon"),
            "mechanism": mechanism(entry.get("event")), "dataset": names.dataset(entry.get("dataset_id")),
            "for": what, "non_private": entry.get("non_private")}


def budget(
    user: Annotated[str | None, typer.Option("--user", metavar="USER", help="Whose budget, by email or id "
                                             "(needs manage_budgets; default: yours).", show_default=False)] = None,
    events: Annotated[int, typer.Option("--events", min=0, max=500, help="Show this many of the last privacy "
                                        "events (0: none).")] = 10,
    output: OutputOption = None,
) -> None:
    """Your privacy budget: ε spent and remaining, the cap, and your last privacy events.

    Spent ε is the Rényi filter's figure, the one the Node enforces; the simple sum of each event's own ε is
    shown beside it for comparison. Remaining ε is the largest single further event the filter admits. The
    ceiling is the highest cap you ever held. Officers with manage_budgets pass --user to see anyone's.
    """
    node = common.connect(output)
    found = node.budget(user)
    ledger = node.budget_ledger(user, limit=events)["items"] if events else []
    if console.output() is console.Output.json:
        console.emit({**found, "ledger": ledger})
        return
    summary = {label: found.get(key) for label, key in SUMMARY.items() if key in found}
    summary["accounting"] = (f"Rényi filter at order {console.number(float(found['rdp_order']))}, "
                             f"δ = {found['delta']:g}")
    console.emit(summary, title="privacy budget")
    if ledger:
        names = common.Names(node)
        console.emit([_event_row(e, names) for e in ledger], columns=EVENT_COLUMNS,
                     title=f"last {len(ledger)} privacy events, newest first")
    elif events:
        console.hint("no privacy events yet")


def register(root: typer.Typer) -> None:
    root.command("budget")(budget)
