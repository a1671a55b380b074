"""The privacy ledger: the system of record of what each user and each dataset has spent, and the Rényi
filter over it. Depends only on its own models (``budget.models``) and ``grid_runtime.privacy``.

The rule (docs/privacy.md): an event's own cost is its ε at the node's δ (dp-accounting's RDP accountant, best
order for that event). The check is a Rényi filter (Feldman & Zrnic 2021) at the node's fixed order α: the sum
of the RDP at α of every recorded event plus the new one must stay within the RDP budget that converts to the
cap at δ (``privacy.admits``), for the user and for every dataset the event is charged to. The ε shown as
spent is that sum converted at α; the simple sum of each event's own ε is shown beside it.

Nothing here locks or commits: callers (``node.flows``) lock the rows the check depends on first, then check
and append in their own transaction.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from grid_runtime.core.errors import BudgetExceeded
from grid_runtime.node.budget.models import DatasetCap, LedgerDataset, LedgerEntry
from grid_runtime.privacy import accounting, events

if TYPE_CHECKING:
    from dp_accounting import DpEvent


class Terms(Protocol):
    """The node's accounting terms: the filter's Rényi order and δ."""

    @property
    def order(self) -> float: ...

    @property
    def delta(self) -> float: ...


@dataclass(frozen=True)
class Cost:
    """What an event costs under the node's terms."""

    event: dict[str, Any] | None  # privacy.events.event_to_dict; None: not differentially private
    epsilon: float  # its own ε at delta (math.inf if not private)
    rdp: float  # its RDP at the node's order (math.inf if not private)
    order: float
    delta: float

    @property
    def non_private(self) -> bool:
        return self.event is None or math.isinf(self.epsilon)

    @property
    def mechanism(self) -> str:
        if self.event is None:
            return "not differentially private"
        return events.describe_event(events.event_from_dict(self.event))


@functools.lru_cache(maxsize=4096)
def _own_epsilon(event_json: str, delta: float) -> float:
    # dp-accounting's best-order search takes ~0.1-0.3 s for a DP-SGD event, and on SQLite it would run while
    # the transaction holds the write lock; an event's ε is a pure function of its JSON and δ, so it is cached.
    return accounting.epsilon(events.event_from_json(event_json), delta)


def cost_of(event: dict[str, Any] | DpEvent | None, terms: Terms) -> Cost:
    """The cost of an event (its dict form or a DpEvent; None: not differentially private)."""
    if event is None:
        return Cost(event=None, epsilon=math.inf, rdp=math.inf, order=terms.order, delta=terms.delta)
    parsed = events.event_from_dict(event) if isinstance(event, dict) else event
    as_dict = events.event_to_dict(parsed)
    if as_dict["type"] == "non_private":
        return Cost(event=None, epsilon=math.inf, rdp=math.inf, order=terms.order, delta=terms.delta)
    return Cost(event=as_dict, epsilon=_own_epsilon(events.event_to_json(parsed), terms.delta),
                rdp=accounting.rdp_at_order(parsed, terms.order), order=terms.order, delta=terms.delta)


@dataclass
class Spent:
    """What a user (or a dataset) has spent, from the ledger."""

    rdp: float = 0.0  # the filter's sum at the node's order
    simple_sum: float = 0.0  # the sum of each event's own ε (shown, never enforced)
    events: int = 0
    non_private_events: int = 0
    order: float = accounting.DEFAULT_RDP_ORDER
    delta: float = accounting.DEFAULT_DELTA

    @property
    def epsilon(self) -> float:
        """The ε shown as spent: the filter's RDP sum converted at the node's order and δ (0 if nothing)."""
        return 0.0 if self.rdp == 0 else accounting.epsilon_from_rdp(self.rdp, self.order, self.delta)

    def epsilon_with(self, cost: Cost) -> float:
        """The spent ε if ``cost`` were added."""
        if math.isinf(cost.rdp):
            return math.inf
        total = self.rdp + cost.rdp
        return 0.0 if total == 0 else accounting.epsilon_from_rdp(total, self.order, self.delta)

    def remaining(self, cap: float) -> float:
        """The largest ε of one further (Gaussian-mechanism) event the filter still admits under ``cap``."""
        return accounting.remaining_epsilon(self.rdp, cap, self.delta, self.order)


def _scope(*, user_id: int | None, dataset_id: int | None) -> list[ColumnElement[bool]]:
    if (user_id is None) == (dataset_id is None):
        raise ValueError("give exactly one of user_id and dataset_id")
    if user_id is not None:
        return [LedgerEntry.user_id == user_id]
    charged = select(LedgerDataset.entry_id).where(LedgerDataset.dataset_id == dataset_id)
    return [LedgerEntry.id.in_(charged)]


def spent(session: Session, terms: Terms, *, user_id: int | None = None, dataset_id: int | None = None,
          excluding_job: int | None = None, excluding_request: int | None = None) -> Spent:
    """The ledger's figures for a user or a dataset (one of them), optionally without one job's or one
    request's entries (the cost card's "before"). Entries recorded at another order or δ (the node's settings
    changed) are re-read from their events at the current ones."""
    where = _scope(user_id=user_id, dataset_id=dataset_id)
    if excluding_job is not None:
        where.append(LedgerEntry.job_id.is_(None) | (LedgerEntry.job_id != excluding_job))
    if excluding_request is not None:
        where.append(LedgerEntry.request_id.is_(None) | (LedgerEntry.request_id != excluding_request))
    private = [*where, LedgerEntry.non_private.is_(False)]
    figures = Spent(order=terms.order, delta=terms.delta)
    same_order = session.execute(
        select(func.count(), func.coalesce(func.sum(LedgerEntry.rdp), 0.0))
        .where(*private, LedgerEntry.rdp_order == terms.order)
    ).one()
    same_delta = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.epsilon), 0.0)).where(*private, LedgerEntry.delta == terms.delta)
    )
    rdp_terms = [float(same_order[1] or 0.0)]
    eps_terms = [float(same_delta or 0.0)]
    stale = session.execute(
        select(LedgerEntry.event, LedgerEntry.rdp_order, LedgerEntry.delta)
        .where(*private, (LedgerEntry.rdp_order != terms.order) | (LedgerEntry.delta != terms.delta))
    ).all()
    for event_dict, order, delta in stale:
        event = events.event_from_dict(event_dict)
        if order != terms.order:
            rdp_terms.append(accounting.rdp_at_order(event, terms.order))
        if delta != terms.delta:
            eps_terms.append(_own_epsilon(events.event_to_json(event), terms.delta))
    figures.rdp = math.fsum(rdp_terms)
    figures.simple_sum = math.fsum(eps_terms)
    figures.events = session.scalar(select(func.count()).select_from(LedgerEntry).where(*private)) or 0
    figures.non_private_events = session.scalar(
        select(func.count()).select_from(LedgerEntry).where(*where, LedgerEntry.non_private.is_(True))) or 0
    return figures


def dataset_cap(session: Session, dataset_id: int) -> float | None:
    row = session.get(DatasetCap, dataset_id)
    return None if row is None else row.epsilon


def lock_caps(session: Session, dataset_ids: Iterable[int]) -> None:
    """Lock the caps of these datasets (ascending ids) until the transaction ends (PostgreSQL; SQLite's
    writers are already serialized by ``BEGIN IMMEDIATE``)."""
    ids = sorted(set(dataset_ids))
    if ids:
        session.scalars(select(DatasetCap).where(DatasetCap.dataset_id.in_(ids)).order_by(DatasetCap.dataset_id)
                        .with_for_update().execution_options(populate_existing=True)).all()


def _refusal(who: str, cap: float, before: Spent, cost: Cost) -> str:
    after = before.epsilon_with(cost)
    return (f"this costs ε {cost.epsilon:.4g} at δ {cost.delta:.0e} (RDP {cost.rdp:.4g} at the node's order "
            f"{cost.order:g}); {who} spent ε {before.epsilon:.4g} of a cap of ε {cap:.4g} (the largest single "
            f"further event that fits costs ε {before.remaining(cap):.4g}), and it would take "
            f"{'you' if who == 'you have' else 'it'} to ε {after:.4g}, past the cap")


def check(session: Session, terms: Terms, *, user_id: int, user_cap: float, dataset_ids: Iterable[int],
          cost: Cost) -> None:
    """Raise BudgetExceeded unless the Rényi filter admits ``cost`` for the user and under every cap of these
    datasets. The message names the cost, what was spent, what still fits and the cap that refused it."""
    if cost.non_private:
        raise BudgetExceeded("this is not differentially private: its privacy cost is infinite, and no budget "
                             "can admit it", details={"epsilon": None, "non_private": True})
    before = spent(session, terms, user_id=user_id)
    if not accounting.admits(before.rdp, cost.rdp, user_cap, terms.delta, terms.order):
        raise BudgetExceeded(
            "over your privacy budget: " + _refusal("you have", user_cap, before, cost),
            details={"cap": "user", "epsilon": cost.epsilon, "spent_epsilon": before.epsilon,
                     "budget_epsilon": user_cap, "remaining_epsilon": before.remaining(user_cap)},
        )
    for dataset_id in sorted(set(dataset_ids)):
        cap = dataset_cap(session, dataset_id)
        if cap is None:
            continue
        on_dataset = spent(session, terms, dataset_id=dataset_id)
        if not accounting.admits(on_dataset.rdp, cost.rdp, cap, terms.delta, terms.order):
            raise BudgetExceeded(
                f"over dataset {dataset_id}'s privacy cap: " + _refusal("its users have", cap, on_dataset, cost),
                details={"cap": "dataset", "dataset_id": dataset_id, "epsilon": cost.epsilon,
                         "spent_epsilon": on_dataset.epsilon, "cap_epsilon": cap,
                         "remaining_epsilon": on_dataset.remaining(cap)},
            )


def record(session: Session, terms: Terms, *, user_id: int, user_email: str, cost: Cost,
           dataset_ids: Iterable[int], dataset_id: int | None = None, job_id: int | None = None,
           request_id: int | None = None, result_id: int | None = None,
           tensor_id: int | None = None) -> LedgerEntry:
    """Append an event to the ledger (the debit), charged to the user and to every one of ``dataset_ids``,
    in the caller's transaction."""
    charged = sorted(set(dataset_ids))
    entry = LedgerEntry(
        user_id=user_id, user_email=user_email, dataset_id=dataset_id if dataset_id is not None else (
            charged[0] if charged else None),
        job_id=job_id, request_id=request_id, result_id=result_id, tensor_id=tensor_id,
        event=cost.event or events.event_to_dict(events.non_private_event()), non_private=cost.non_private,
        rdp_order=terms.order, rdp=None if cost.non_private else cost.rdp,
        epsilon=None if cost.non_private else cost.epsilon, delta=terms.delta,
    )
    session.add(entry)
    session.flush()
    session.add_all(LedgerDataset(entry_id=entry.id, dataset_id=d) for d in charged)
    session.flush()
    return entry


def charged_datasets(session: Session, entry_ids: Iterable[int]) -> dict[int, list[int]]:
    """Entry id -> the datasets it was charged to."""
    ids = list(entry_ids)
    found: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for entry_id, dataset_id in session.execute(
                select(LedgerDataset.entry_id, LedgerDataset.dataset_id)
                .where(LedgerDataset.entry_id.in_(ids)).order_by(LedgerDataset.dataset_id)):
            found[entry_id].append(dataset_id)
    return found


def job_entry(session: Session, job_id: int) -> LedgerEntry | None:
    """The entry that charged a job at its admission (None: the job was admitted before charging moved to
    admission, or never)."""
    return session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id)
                           .order_by(LedgerEntry.id).limit(1)).first()


def entries(session: Session, *, user_id: int | None = None, dataset_id: int | None = None, limit: int = 50,
            offset: int = 0) -> tuple[list[LedgerEntry], int]:
    """Ledger entries, newest first, of a user, a dataset (every entry charged to it), or everyone."""
    where: list[ColumnElement[bool]] = []
    if user_id is not None:
        where.append(LedgerEntry.user_id == user_id)
    if dataset_id is not None:
        where += _scope(user_id=None, dataset_id=dataset_id)
    total = session.scalar(select(func.count()).select_from(LedgerEntry).where(*where)) or 0
    rows = session.scalars(select(LedgerEntry).where(*where).order_by(LedgerEntry.id.desc()).limit(limit)
                           .offset(offset))
    return list(rows), total
