"""Privacy budgets: the ledger, the Rényi filter over it, and the ``release`` and ``budget`` request kinds.

The rule (docs/privacy.md; the domain guide, Privacy budget): a request's own cost is its event's ε at the
node's δ (dp-accounting's RDP accountant, best order for that event). The budget check is a Rényi filter
(Feldman & Zrnic 2021) at the node's fixed order α: the sum of the RDP at α of every event in the user's
ledger plus the new one must stay within the RDP budget that converts to the user's ε at δ
(``privacy.admits``); a dataset's cap is checked the same way over every user's events on that dataset. The
ε shown as spent is that sum converted at α; the simple sum of each event's own ε is shown beside it.

Concurrency: every check that may be followed by a debit runs after ``lock_budgets`` (``SELECT ... FOR
UPDATE`` on the user row and the dataset cap rows, in that order, on PostgreSQL; on SQLite every
transaction holds the write lock from ``BEGIN IMMEDIATE``), so two approvals can never both pass the check
against the same ledger state.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dp_accounting import DpEvent
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import BudgetExceeded, Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.audit import service as audit
from grid_runtime.node.budget.models import DatasetCap, LedgerEntry, PrivacySettings, ReleasePolicy
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.models import Request
from grid_runtime.node.requests.states import RequestKind, RequestState
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User
from grid_runtime.privacy import accounting, events

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

RELEASED_STATES = (str(RequestState.approved), str(RequestState.auto_approved))
RELEASE_POLICIES = ("dp_only", "allow_non_private")


# --- settings --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy settings in force: the environment's, overridden per node by ``PrivacySettings``."""

    delta: float
    order: float
    release_policy: str
    webhook_url: str | None
    request_ttl: timedelta


def config(session: Session, settings: NodeSettings) -> PrivacyConfig:
    row = session.get(PrivacySettings, 1)
    return PrivacyConfig(
        delta=settings.delta,
        order=settings.rdp_order,
        release_policy=(row.release_policy if row and row.release_policy else settings.release_policy),
        webhook_url=(row.webhook_url if row and row.webhook_url is not None else settings.webhook_url) or None,
        request_ttl=timedelta(seconds=settings.request_ttl_seconds),
    )


def update_settings(session: Session, *, actor: Actor, release_policy: str | None = None,
                    webhook_url: str | None = None, clear_webhook: bool = False) -> PrivacySettings:
    """Change the node's release policy or webhook URL (edit_settings); audited."""
    if release_policy is not None and release_policy not in RELEASE_POLICIES:
        raise InvalidInput(f"release_policy must be one of {', '.join(RELEASE_POLICIES)}")
    row = session.get(PrivacySettings, 1, with_for_update=True)
    if row is None:
        row = PrivacySettings(id=1)
        session.add(row)
    changes: dict[str, Any] = {}
    if release_policy is not None and release_policy != row.release_policy:
        changes["release_policy"] = {"from": row.release_policy, "to": release_policy}
        row.release_policy = release_policy
    if clear_webhook or (webhook_url is not None and webhook_url != row.webhook_url):
        new = "" if clear_webhook else webhook_url
        changes["webhook_url"] = {"from": row.webhook_url, "to": new}
        row.webhook_url = new
    if changes:
        row.updated_by = actor.id
        audit.record(session, actor=actor, action="privacy.settings_changed", target_type="node",
                     target_id=None, details=changes)
    session.flush()
    return row


# --- costs and the ledger ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What releasing something costs, computed by the Node from the event it recorded for what ran."""

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
    # the request holds the write lock; an event's ε is a pure function of its JSON and δ, so it is cached.
    return accounting.epsilon(events.event_from_json(event_json), delta)


def cost_of(event: dict[str, Any] | DpEvent | None, cfg: PrivacyConfig) -> Cost:
    """The cost of an event (its dict form or a DpEvent; None for a non-private release) under ``cfg``."""
    if event is None:
        return Cost(event=None, epsilon=math.inf, rdp=math.inf, order=cfg.order, delta=cfg.delta)
    parsed = events.event_from_dict(event) if isinstance(event, dict) else event
    as_dict = events.event_to_dict(parsed)
    if as_dict["type"] == "non_private":
        return Cost(event=None, epsilon=math.inf, rdp=math.inf, order=cfg.order, delta=cfg.delta)
    return Cost(event=as_dict, epsilon=_own_epsilon(events.event_to_json(parsed), cfg.delta),
                rdp=accounting.rdp_at_order(parsed, cfg.order), order=cfg.order, delta=cfg.delta)


@dataclass
class Spent:
    """What a user (or a dataset) has spent, from the ledger."""

    rdp: float = 0.0  # the filter's sum at the node's order
    simple_sum: float = 0.0  # the sum of each event's own ε (shown, never enforced)
    events: int = 0
    non_private_releases: int = 0
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


def spent(session: Session, cfg: PrivacyConfig, *, user_id: int | None = None, dataset_id: int | None = None,
          excluding_request: int | None = None) -> Spent:
    """The ledger's figures for a user or a dataset (one of them). Entries recorded at another order or δ
    (the node's settings changed) are re-read from their events at the current ones."""
    if (user_id is None) == (dataset_id is None):
        raise ValueError("give exactly one of user_id and dataset_id")
    where = [LedgerEntry.user_id == user_id] if user_id is not None else [LedgerEntry.dataset_id == dataset_id]
    if excluding_request is not None:
        where.append((LedgerEntry.request_id.is_(None)) | (LedgerEntry.request_id != excluding_request))
    private = [*where, LedgerEntry.non_private.is_(False)]
    figures = Spent(order=cfg.order, delta=cfg.delta)
    same_order = session.execute(
        select(func.count(), func.coalesce(func.sum(LedgerEntry.rdp), 0.0))
        .where(*private, LedgerEntry.rdp_order == cfg.order)
    ).one()
    same_delta = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.epsilon), 0.0)).where(*private, LedgerEntry.delta == cfg.delta)
    )
    rdp_terms = [float(same_order[1] or 0.0)]
    eps_terms = [float(same_delta or 0.0)]
    stale = session.execute(
        select(LedgerEntry.event, LedgerEntry.rdp_order, LedgerEntry.delta)
        .where(*private, (LedgerEntry.rdp_order != cfg.order) | (LedgerEntry.delta != cfg.delta))
    ).all()
    for event_dict, order, delta in stale:
        event = events.event_from_dict(event_dict)
        if order != cfg.order:
            rdp_terms.append(accounting.rdp_at_order(event, cfg.order))
        if delta != cfg.delta:
            eps_terms.append(_own_epsilon(events.event_to_json(event), cfg.delta))
    figures.rdp = math.fsum(rdp_terms)
    figures.simple_sum = math.fsum(eps_terms)
    figures.events = session.scalar(select(func.count()).select_from(LedgerEntry).where(*private)) or 0
    figures.non_private_releases = session.scalar(
        select(func.count()).select_from(LedgerEntry).where(*where, LedgerEntry.non_private.is_(True))) or 0
    return figures


def dataset_cap(session: Session, dataset_id: int) -> float | None:
    row = session.get(DatasetCap, dataset_id)
    return None if row is None else row.epsilon


def lock_budgets(session: Session, *, user_id: int, dataset_ids: list[int]) -> User:
    """Lock the user's row, then the caps of these datasets (ascending), until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE``, so concurrent checks-then-debits on the same user or dataset run
    one after another. SQLite ignores the clause; its writers are already serialized (``BEGIN IMMEDIATE``).
    """
    user = session.scalar(select(User).where(User.id == user_id).with_for_update(of=User)
                          .execution_options(populate_existing=True))
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    if dataset_ids:
        session.scalars(select(DatasetCap).where(DatasetCap.dataset_id.in_(sorted(set(dataset_ids))))
                        .order_by(DatasetCap.dataset_id).with_for_update()
                        .execution_options(populate_existing=True)).all()
    return user


def _refusal(who: str, cap: float, before: Spent, cost: Cost) -> str:
    after = before.epsilon_with(cost)
    remaining = max(0.0, cap - before.epsilon)
    return (f"this costs ε {cost.epsilon:.4g} at δ {cost.delta:.0e} (RDP {cost.rdp:.4g} at the node's order "
            f"{cost.order:g}); {who} spent ε {before.epsilon:.4g} of a cap of ε {cap:.4g} (remaining ε "
            f"{remaining:.4g}), and it would take {'you' if who == 'you have' else 'it'} to ε {after:.4g}, "
            f"past the cap")


def check_budget(session: Session, *, user: User, dataset_ids: list[int], cost: Cost, cfg: PrivacyConfig,
                 excluding_request: int | None = None) -> None:
    """Raise BudgetExceeded unless the Rényi filter admits ``cost`` for the user and every dataset's cap.

    The message names the cost, what was spent, the remaining budget and the cap that refused it.
    """
    if cost.non_private:
        raise BudgetExceeded("this is not differentially private: its privacy cost is infinite, and no budget "
                             "can admit it", details={"epsilon": None, "non_private": True})
    before = spent(session, cfg, user_id=user.id, excluding_request=excluding_request)
    if not accounting.admits(before.rdp, cost.rdp, user.budget_epsilon, cfg.delta, cfg.order):
        raise BudgetExceeded(
            "over your privacy budget: " + _refusal("you have", user.budget_epsilon, before, cost),
            details={"cap": "user", "epsilon": cost.epsilon, "spent_epsilon": before.epsilon,
                     "budget_epsilon": user.budget_epsilon,
                     "remaining_epsilon": max(0.0, user.budget_epsilon - before.epsilon)},
        )
    for dataset_id in sorted(set(dataset_ids)):
        cap = dataset_cap(session, dataset_id)
        if cap is None:
            continue
        on_dataset = spent(session, cfg, dataset_id=dataset_id, excluding_request=excluding_request)
        if not accounting.admits(on_dataset.rdp, cost.rdp, cap, cfg.delta, cfg.order):
            raise BudgetExceeded(
                f"over dataset {dataset_id}'s privacy cap: " + _refusal("its users have", cap, on_dataset, cost),
                details={"cap": "dataset", "dataset_id": dataset_id, "epsilon": cost.epsilon,
                         "spent_epsilon": on_dataset.epsilon, "cap_epsilon": cap,
                         "remaining_epsilon": max(0.0, cap - on_dataset.epsilon)},
            )


def job_admissible(session: Session, *, user: User, dataset_id: int | None, event: DpEvent | None,
                   settings: NodeSettings) -> None:
    """Refuse (BudgetExceeded) a job whose own cost could never be released within the user's remaining
    budget or the dataset's cap, by the Rényi filter over the ledger at the node's order. A non-private job
    (``event`` None) is allowed: its result just will not be releasable under the ``dp_only`` policy.

    Nothing has run yet, so the refusal leaks nothing about the data.
    """
    if event is None:
        return
    cfg = config(session, settings)
    cost = cost_of(event, cfg)
    if cost.non_private:
        return
    try:
        check_budget(session, user=user, dataset_ids=[dataset_id] if dataset_id is not None else [], cost=cost,
                     cfg=cfg)
    except BudgetExceeded as exc:
        raise BudgetExceeded("this job could never be released: " + exc.message, details=exc.details) from None


def record(session: Session, *, user: User, cost: Cost, cfg: PrivacyConfig, request_id: int | None,
           dataset_id: int | None, result_id: int | None = None, tensor_id: int | None = None) -> LedgerEntry:
    """Append a privacy event to the ledger (the debit), in the caller's transaction."""
    entry = LedgerEntry(
        user_id=user.id, user_email=user.email, dataset_id=dataset_id, request_id=request_id,
        result_id=result_id, tensor_id=tensor_id, event=cost.event or events.event_to_dict(events.non_private_event()),
        non_private=cost.non_private, rdp_order=cfg.order, rdp=None if cost.non_private else cost.rdp,
        epsilon=None if cost.non_private else cost.epsilon, delta=cfg.delta,
    )
    session.add(entry)
    session.flush()
    return entry


def ledger(session: Session, *, user_id: int | None = None, dataset_id: int | None = None, limit: int = 50,
           offset: int = 0) -> tuple[list[LedgerEntry], int]:
    where = []
    if user_id is not None:
        where.append(LedgerEntry.user_id == user_id)
    if dataset_id is not None:
        where.append(LedgerEntry.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(LedgerEntry).where(*where)) or 0
    rows = session.scalars(select(LedgerEntry).where(*where).order_by(LedgerEntry.id.desc()).limit(limit)
                           .offset(offset))
    return list(rows), total


def set_dataset_cap(session: Session, *, actor: Actor, dataset_id: int, epsilon: float | None) -> DatasetCap | None:
    """Set (or with None remove) a dataset's cap (manage_budgets); audited."""
    if session.get(Dataset, dataset_id) is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    row = session.get(DatasetCap, dataset_id, with_for_update=True)
    before = row.epsilon if row else None
    if epsilon is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        row = DatasetCap(dataset_id=dataset_id, epsilon=epsilon, set_by=actor.id)
        session.add(row)
    else:
        row.epsilon, row.set_by, row.set_at = epsilon, actor.id, utcnow()
    audit.record(session, actor=actor, action="dataset.privacy_cap_set", target_type="dataset",
                 target_id=dataset_id, details={"from": before, "to": epsilon})
    session.flush()
    return row if epsilon is not None else None


# --- officer policies ------------------------------------------------------------------------------------


def create_policy(session: Session, *, actor: Actor, dataset_id: int | None, max_epsilon: float,
                  note: str = "") -> ReleasePolicy:
    """Auto-approve private releases costing at most ``max_epsilon`` (on one dataset, or any); audited."""
    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    if not (math.isfinite(max_epsilon) and max_epsilon > 0):
        raise InvalidInput("max_epsilon must be a finite number > 0")
    policy = ReleasePolicy(action="auto_approve", dataset_id=dataset_id, max_epsilon=max_epsilon, note=note,
                           created_by=actor.id)
    session.add(policy)
    session.flush()
    audit.record(session, actor=actor, action="release_policy.created", target_type="release_policy",
                 target_id=policy.id, details={"dataset_id": dataset_id, "max_epsilon": max_epsilon})
    return policy


def list_policies(session: Session) -> list[ReleasePolicy]:
    return list(session.scalars(select(ReleasePolicy).order_by(ReleasePolicy.id)))


def delete_policy(session: Session, *, actor: Actor, policy_id: int) -> None:
    policy = session.get(ReleasePolicy, policy_id)
    if policy is None:
        raise NotFound(f"no release policy with id {policy_id}")
    audit.record(session, actor=actor, action="release_policy.deleted", target_type="release_policy",
                 target_id=policy_id, details={"dataset_id": policy.dataset_id, "max_epsilon": policy.max_epsilon})
    session.delete(policy)
    session.flush()


def matching_policy(session: Session, *, dataset_id: int | None, cost: Cost) -> ReleasePolicy | None:
    """The first auto-approve policy that covers a private release of this cost on this dataset."""
    if cost.non_private:
        return None
    query = select(ReleasePolicy).where(ReleasePolicy.action == "auto_approve",
                                        ReleasePolicy.max_epsilon >= cost.epsilon)
    if dataset_id is None:
        query = query.where(ReleasePolicy.dataset_id.is_(None))
    else:
        query = query.where(ReleasePolicy.dataset_id.is_(None) | (ReleasePolicy.dataset_id == dataset_id))
    return session.scalars(query.order_by(ReleasePolicy.id).limit(1)).first()


# --- the release kind --------------------------------------------------------------------------------------


@dataclass
class Artifact:
    """What a release request is about: a result or a private tensor, with its fingerprint and cost."""

    target_type: str  # "result" | "tensor"
    target_id: int
    sha256: str
    owner_id: int | None
    event: dict[str, Any] | None
    dataset_ids: list[int] = field(default_factory=list)
    job: Job | None = None

    @property
    def dataset_id(self) -> int | None:
        return self.dataset_ids[0] if self.dataset_ids else None


def artifact(session: Session, *, target_type: str, target_id: int) -> Artifact:
    """The artifact behind a release target, as it is now (NotFound if it is gone)."""
    if target_type == "result":
        result = session.get(Result, target_id)
        if result is None:
            raise NotFound(f"no result with id {target_id}", details={"result_id": target_id})
        job = session.get(Job, result.job_id)
        return Artifact("result", result.id, result.sha256, result.owner_id, result.event,
                        [job.dataset_id] if job is not None and job.dataset_id is not None else [], job)
    if target_type == "tensor":
        tensor = session.get(Tensor, target_id)
        if tensor is None:
            raise NotFound(f"no tensor with id {target_id}", details={"tensor_id": target_id})
        dataset_ids = list(session.scalars(select(DatasetMember.dataset_id)
                                           .where(DatasetMember.tensor_id == target_id)
                                           .order_by(DatasetMember.dataset_id)))
        return Artifact("tensor", tensor.id, tensor.sha256, tensor.uploader_id, None, dataset_ids)
    raise InvalidInput(f"a release is of a result or a tensor, not {target_type!r}")


def _downloadable_without_release(session: Session, *, user_id: int, target: Artifact) -> bool:
    if target.target_type == "tensor":
        decision = permissions.effective_level(session, user_id=user_id, target_type="tensor",
                                               target_id=target.target_id)
        return permissions.allows(decision.level, Level.download)
    from grid_runtime.node.jobs import service as jobs  # the inheritance rule (jobs imports this module)

    result = session.get(Result, target.target_id)
    assert result is not None
    return bool(jobs.result_downloadable_without_release(session, user_id=user_id, result=result))


def release_approved(session: Session, user_id: int, result: Result) -> bool:
    """Has ``user_id`` an approved release of exactly this result (same fingerprint)? H9's download asks."""
    return released_request(session, user_id=user_id, target_type="result", target_id=result.id,
                            sha256=result.sha256) is not None


def released_request(session: Session, *, user_id: int, target_type: str, target_id: int,
                     sha256: str) -> Request | None:
    rows = session.scalars(
        select(Request).where(Request.kind == str(RequestKind.release), Request.requester_id == user_id,
                              Request.target_type == target_type, Request.target_id == target_id,
                              Request.state.in_(RELEASED_STATES)).order_by(Request.id.desc())
    )
    return next((r for r in rows if r.payload.get("sha256") == sha256), None)


def _cost_payload(cost: Cost) -> dict[str, Any]:
    return {
        "event": cost.event, "non_private": cost.non_private, "mechanism": cost.mechanism,
        "epsilon": None if cost.non_private else cost.epsilon,
        "rdp": None if cost.non_private else cost.rdp, "rdp_order": cost.order, "delta": cost.delta,
    }


def file_release_request(session: Session, *, actor: Actor, target_type: str, target_id: int, reason: str,
                         settings: NodeSettings) -> Request:
    """File a release request for a result (its owner) or a private tensor, with the Node-computed cost and
    the artifact's sha256; applies the auto-deny rules and the officers' policies at creation.

    Auto-denied (with a reason the requester reads): a non-private release under the ``dp_only`` policy, or
    a private one the filter refuses (user budget or dataset cap). Auto-approved, with its debit in this
    transaction: a private release an officer's policy covers and the filter admits. Otherwise pending
    until an officer decides or it expires. 409 if the caller may download it already, or already has a
    pending or approved release for it.
    """
    cfg = config(session, settings)
    requests.expire_overdue(session)
    target = artifact(session, target_type=target_type, target_id=target_id)
    if target_type == "result" and target.owner_id != actor.id:
        raise Forbidden(f"result {target_id} is not yours; only the user who ran its job may ask for its release")
    # Lock first: concurrent filings by one user (and approvals) serialize here on PostgreSQL too.
    user = lock_budgets(session, user_id=actor.id, dataset_ids=target.dataset_ids)
    if _downloadable_without_release(session, user_id=actor.id, target=target):
        raise Conflict(f"you may already download {target_type} {target_id}; no release is needed",
                       details={"target_type": target_type, "target_id": target_id})
    existing = released_request(session, user_id=actor.id, target_type=target_type, target_id=target_id,
                                sha256=target.sha256)
    if existing is None:
        existing = session.scalars(
            select(Request).where(Request.kind == str(RequestKind.release), Request.requester_id == actor.id,
                                  Request.target_type == target_type, Request.target_id == target_id,
                                  Request.state == str(RequestState.pending))
        ).first()
    if existing is not None:
        raise Conflict(f"you already have a {existing.state} release request for {target_type} {target_id} "
                       f"(request {existing.id})", details={"request_id": existing.id, "state": existing.state})

    cost = cost_of(target.event, cfg)
    payload: dict[str, Any] = {"sha256": target.sha256, "dataset_id": target.dataset_id,
                               "dataset_ids": target.dataset_ids, **_cost_payload(cost),
                               "release_policy": cfg.release_policy}
    state, note, policy = RequestState.pending, None, None
    if cost.non_private:
        if cfg.release_policy == "dp_only":
            state = RequestState.auto_denied
            note = (f"{target_type} {target_id} is not differentially private, so its privacy cost is "
                    "infinite; this Node's release policy (dp_only) releases only differentially private "
                    "results")
        else:
            note = "not differentially private: flagged for an officer (release policy allow_non_private)"
    else:
        try:
            check_budget(session, user=user, dataset_ids=target.dataset_ids, cost=cost, cfg=cfg)
        except BudgetExceeded as exc:
            state, note = RequestState.auto_denied, exc.message
            payload["refusal"] = exc.details
        else:
            policy = matching_policy(session, dataset_id=target.dataset_id, cost=cost)
            if policy is not None:
                state = RequestState.auto_approved
                where = "" if policy.dataset_id is None else f" on dataset {policy.dataset_id}"
                note = (f"auto-approved by release policy {policy.id} (private releases up to ε "
                        f"{policy.max_epsilon:g}{where})")
                payload["policy_id"] = policy.id
    expires_at = utcnow() + cfg.request_ttl if state == RequestState.pending else None
    request = requests.create_request(
        session, actor=actor, requester_id=actor.id, kind=RequestKind.release, reason=reason.strip(),
        target_type=target_type, target_id=target_id, payload=payload, state=state,
        note=note if state != RequestState.pending else None, expires_at=expires_at,
    )
    if state == RequestState.auto_approved:
        record(session, user=user, cost=cost, cfg=cfg, request_id=request.id, dataset_id=target.dataset_id,
               result_id=target_id if target_type == "result" else None,
               tensor_id=target_id if target_type == "tensor" else None)
    return request


def debit_release(session: Session, *, request: Request, fingerprint: str | None, settings: NodeSettings) -> None:
    """What approving a release does, inside the approving transaction: check the fingerprint and that the
    artifact is unchanged, re-check the budget under the locks, append the event to the ledger."""
    assert request.target_type is not None and request.target_id is not None
    recorded = request.payload.get("sha256")
    if fingerprint is not None and fingerprint.lower() != recorded:
        raise Conflict(f"fingerprint {fingerprint} is not the one of request {request.id} ({recorded}); the "
                       "artifact you inspected is not the one requested",
                       details={"request_id": request.id, "sha256": recorded})
    try:
        target = artifact(session, target_type=request.target_type, target_id=request.target_id)
    except NotFound as exc:
        raise Conflict(f"{request.target_type} {request.target_id} no longer exists; deny request {request.id} "
                       "instead", details={"request_id": request.id}) from exc
    if target.sha256 != recorded:
        raise Conflict(f"{request.target_type} {request.target_id} changed since request {request.id} was filed "
                       f"(sha256 {target.sha256}, requested {recorded}); deny it and let the requester ask again",
                       details={"request_id": request.id, "sha256": target.sha256})
    cfg = config(session, settings)
    cost = cost_of(request.payload.get("event"), cfg)
    user = lock_budgets(session, user_id=request.requester_id, dataset_ids=target.dataset_ids)
    if not cost.non_private:
        check_budget(session, user=user, dataset_ids=target.dataset_ids, cost=cost, cfg=cfg)
    record(session, user=user, cost=cost, cfg=cfg, request_id=request.id, dataset_id=target.dataset_id,
           result_id=target.target_id if target.target_type == "result" else None,
           tensor_id=target.target_id if target.target_type == "tensor" else None)


def released_artifact(session: Session, *, actor: Actor, request_id: int) -> tuple[Request, Artifact]:
    """The approved release ``request_id`` and its artifact, for its requester only (Forbidden otherwise);
    Conflict if it is not approved or the artifact changed since."""
    request = requests.get_request(session, request_id)
    if request.kind != RequestKind.release:
        raise InvalidInput(f"request {request_id} is a {request.kind} request, not a release")
    if request.requester_id != actor.id:
        raise Forbidden(f"only the requester of release {request_id} may download what it released")
    if request.state not in RELEASED_STATES:
        raise Conflict(f"release request {request_id} is {request.state}"
                       + (f": {request.decision_note}" if request.decision_note else ""),
                       details={"request_id": request_id, "state": request.state, "reason": request.decision_note})
    assert request.target_type is not None and request.target_id is not None
    target = artifact(session, target_type=request.target_type, target_id=request.target_id)
    if target.sha256 != request.payload.get("sha256"):
        raise Conflict(f"{request.target_type} {request.target_id} changed since it was released")
    return request, target


# --- the budget kind ---------------------------------------------------------------------------------------


def file_budget_request(session: Session, *, actor: Actor, epsilon: float, reason: str,
                        settings: NodeSettings) -> Request:
    """Ask for ``epsilon`` more budget, with a reason; a holder of manage_budgets decides."""
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise InvalidInput("ask for a finite ε > 0 more")
    if not reason.strip():
        raise InvalidInput("a budget request needs a reason")
    requests.expire_overdue(session)
    pending = session.scalar(select(Request.id).where(Request.kind == str(RequestKind.budget),
                                                      Request.requester_id == actor.id,
                                                      Request.state == str(RequestState.pending)))
    if pending is not None:
        raise Conflict(f"you already have a pending budget request (request {pending}); withdraw it first",
                       details={"request_id": pending, "state": str(RequestState.pending)})
    cfg = config(session, settings)
    payload = {"additional_epsilon": epsilon, "budget_at_request": actor.user.budget_epsilon}
    return requests.create_request(session, actor=actor, requester_id=actor.id, kind=RequestKind.budget,
                                   target_type="user", target_id=actor.id, reason=reason.strip(),
                                   payload=payload, expires_at=utcnow() + cfg.request_ttl)


def raise_budget(session: Session, *, request: Request, actor: Actor) -> None:
    """What approving a budget request does: add the ε asked for to the requester's budget (locked)."""
    user = lock_budgets(session, user_id=request.requester_id, dataset_ids=[])
    before = user.budget_epsilon
    user.budget_epsilon = before + float(request.payload["additional_epsilon"])
    audit.record(session, actor=actor, action="user.budget_set", target_type="user", target_id=user.id,
                 details={"email": user.email, "from": before, "to": user.budget_epsilon, "via_request": request.id})
