"""Privacy budgets: the node's privacy settings, users' budgets (with the two-person rules), dataset caps,
officers' release policies, who may run jobs without DP, and the ``budget`` request kind.

The ledger and the Rényi filter are in ``budget.ledger``; charging a job when it is admitted and deciding
requests are transactions that cross domains, in ``node.flows``.

Two people for privacy decisions (the domain guide): nobody changes their own budget; an officer cannot set
the budget of a user whose role outranks theirs (``outranks``: the other role's capabilities are a strict
superset of theirs, so Owner > Administrator > Compliance Officer > Data Scientist, and custom roles by the
same rule); an auto-approve policy names at most the node's ``max_policy_epsilon``, never covers a request of
its author nor of anyone holding ``triage_requests``. Each refusal names the rule (``details.rule``).

Concurrency: every check that may be followed by a debit runs after ``lock_budgets`` (``SELECT ... FOR
UPDATE`` on the user row and the dataset cap rows, in that order, on PostgreSQL; on SQLite every transaction
holds the write lock from ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node import lookup
from grid_runtime.node.audit import service as audit
from grid_runtime.node.budget import ledger
from grid_runtime.node.budget.ledger import Cost, Spent
from grid_runtime.node.budget.models import (
    BudgetChange,
    DatasetCap,
    LedgerEntry,
    NonPrivateAllowance,
    PrivacySettings,
    ReleasePolicy,
)
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.models import Request
from grid_runtime.node.requests.states import RequestKind, RequestState
from grid_runtime.node.users.models import User
from grid_runtime.privacy import accounting

if TYPE_CHECKING:
    from dp_accounting import DpEvent

    from grid_runtime.node.deps import Actor

__all__ = ["Cost", "PrivacyConfig", "Spent", "check_budget", "config", "cost_of", "spent"]

RELEASE_POLICIES = ("dp_only", "allow_non_private")
NON_PRIVATE_JOBS_DEFAULT = False
"""Jobs without DP are refused unless the node's privacy settings allow them (and then only for users an
administrator allowed)."""
MAX_POLICY_EPSILON_DEFAULT = 1.0
"""The largest ε an auto-approve policy may name, unless the node's privacy settings say otherwise."""


# --- settings --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivacyConfig:
    """The privacy settings in force: the environment's, overridden per node by ``PrivacySettings``."""

    delta: float
    order: float
    release_policy: str
    webhook_url: str | None
    request_ttl: timedelta
    non_private_jobs: bool = NON_PRIVATE_JOBS_DEFAULT
    max_policy_epsilon: float = MAX_POLICY_EPSILON_DEFAULT


def config(session: Session, settings: NodeSettings) -> PrivacyConfig:
    row = session.get(PrivacySettings, 1)
    return PrivacyConfig(
        delta=settings.delta,
        order=settings.rdp_order,
        release_policy=(row.release_policy if row and row.release_policy else settings.release_policy),
        webhook_url=(row.webhook_url if row and row.webhook_url is not None else settings.webhook_url) or None,
        request_ttl=timedelta(seconds=settings.request_ttl_seconds),
        non_private_jobs=(row.non_private_jobs if row and row.non_private_jobs is not None
                          else NON_PRIVATE_JOBS_DEFAULT),
        max_policy_epsilon=(row.max_policy_epsilon if row and row.max_policy_epsilon is not None
                            else MAX_POLICY_EPSILON_DEFAULT),
    )


def update_settings(session: Session, *, actor: Actor, release_policy: str | None = None,
                    webhook_url: str | None = None, clear_webhook: bool = False,
                    non_private_jobs: bool | None = None, max_policy_epsilon: float | None = None
                    ) -> PrivacySettings:
    """Change the node's release policy, webhook URL, whether jobs without DP may run, or the largest ε an
    auto-approve policy may name (edit_settings); audited."""
    if release_policy is not None and release_policy not in RELEASE_POLICIES:
        raise InvalidInput(f"release_policy must be one of {', '.join(RELEASE_POLICIES)}")
    if max_policy_epsilon is not None and not (math.isfinite(max_policy_epsilon) and max_policy_epsilon >= 0):
        raise InvalidInput("max_policy_epsilon must be a finite number >= 0")
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
    if non_private_jobs is not None and non_private_jobs != row.non_private_jobs:
        changes["non_private_jobs"] = {"from": row.non_private_jobs, "to": non_private_jobs}
        row.non_private_jobs = non_private_jobs
    if max_policy_epsilon is not None and max_policy_epsilon != row.max_policy_epsilon:
        changes["max_policy_epsilon"] = {"from": row.max_policy_epsilon, "to": max_policy_epsilon}
        row.max_policy_epsilon = max_policy_epsilon
    if changes:
        row.updated_by = actor.id
        audit.record(session, actor=actor, action="privacy.settings_changed", target_type="node",
                     target_id=None, details=changes)
    session.flush()
    return row


# --- the ledger, as the rest of the Node reads it ---------------------------------------------------------


def cost_of(event: dict[str, Any] | DpEvent | None, cfg: PrivacyConfig) -> Cost:
    """The cost of an event (its dict form or a DpEvent; None for something not private) under ``cfg``."""
    return ledger.cost_of(event, cfg)


def spent(session: Session, cfg: PrivacyConfig, *, user_id: int | None = None, dataset_id: int | None = None,
          excluding_job: int | None = None, excluding_request: int | None = None) -> Spent:
    """The ledger's figures for a user or a dataset (``ledger.spent``)."""
    return ledger.spent(session, cfg, user_id=user_id, dataset_id=dataset_id, excluding_job=excluding_job,
                        excluding_request=excluding_request)


def dataset_cap(session: Session, dataset_id: int) -> float | None:
    return ledger.dataset_cap(session, dataset_id)


def lock_budgets(session: Session, *, user_id: int, dataset_ids: Iterable[int]) -> User:
    """Lock the user's row, then the caps of these datasets (ascending), until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE``, so concurrent checks-then-debits on the same user or dataset run
    one after another. SQLite ignores the clause; its writers are already serialized (``BEGIN IMMEDIATE``).
    """
    user = session.scalar(select(User).where(User.id == user_id).with_for_update(of=User)
                          .execution_options(populate_existing=True))
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    ledger.lock_caps(session, dataset_ids)
    return user


def check_budget(session: Session, *, user: User, dataset_ids: Iterable[int], cost: Cost, cfg: PrivacyConfig
                 ) -> None:
    """Raise BudgetExceeded unless the Rényi filter admits ``cost`` for the user and every dataset's cap."""
    ledger.check(session, cfg, user_id=user.id, user_cap=user.budget_epsilon, dataset_ids=dataset_ids, cost=cost)


def entries(session: Session, *, user_id: int | None = None, dataset_id: int | None = None, limit: int = 50,
            offset: int = 0) -> tuple[list[LedgerEntry], int]:
    return ledger.entries(session, user_id=user_id, dataset_id=dataset_id, limit=limit, offset=offset)


# --- budget figures ----------------------------------------------------------------------------------------


def ceiling(session: Session, user: User) -> float:
    """The highest ε cap the user ever had: the budget the filter's guarantee holds at (a cap lowered after
    events were charged does not take back what they revealed)."""
    recorded = session.execute(
        select(func.max(BudgetChange.from_epsilon), func.max(BudgetChange.to_epsilon))
        .where(BudgetChange.user_id == user.id)).one()
    return max([user.budget_epsilon, *(float(v) for v in recorded if v is not None)])


@dataclass(frozen=True)
class Figures:
    """A user's budget as GET /budget shows it."""

    budget_epsilon: float
    ceiling_epsilon: float
    spent: Spent
    remaining_epsilon: float
    rdp_budget: float


def figures(session: Session, cfg: PrivacyConfig, user: User) -> Figures:
    used = spent(session, cfg, user_id=user.id)
    return Figures(budget_epsilon=user.budget_epsilon, ceiling_epsilon=ceiling(session, user), spent=used,
                   remaining_epsilon=used.remaining(user.budget_epsilon),
                   rdp_budget=accounting.rdp_budget(user.budget_epsilon, cfg.delta, cfg.order))


# --- users' budgets: the two-person rules ------------------------------------------------------------------


def outranks(role: Iterable[str], other: Iterable[str]) -> bool:
    """Whether a role with capabilities ``role`` outranks one with ``other``: a strict superset. Presets:
    Owner > Administrator > Compliance Officer > Data Scientist; custom roles are ranked the same way."""
    return set(map(str, role)) > set(map(str, other))


def check_may_set_budget(actor: Actor, user: User) -> None:
    """Forbidden, naming the rule, unless ``actor`` may change ``user``'s budget."""
    if user.id == actor.id:
        raise Forbidden("nobody changes their own privacy budget (two-person rule): another holder of "
                        "manage_budgets has to", details={"rule": "own_budget"})
    theirs = user.role.capabilities
    if outranks(theirs, actor.capabilities):
        raise Forbidden(f"{user.email}'s role ({user.role.name}) outranks yours: its capabilities include all of "
                        "yours and more, so you cannot set their budget (rank rule)",
                        details={"rule": "outranked", "role": user.role.name})


def _change_budget(session: Session, *, actor: Actor, user: User, epsilon: float,
                   via_request: int | None = None) -> None:
    before = user.budget_epsilon
    if epsilon == before:
        return
    user.budget_epsilon = epsilon
    session.add(BudgetChange(user_id=user.id, from_epsilon=before, to_epsilon=epsilon, set_by=actor.id,
                             via_request=via_request))
    details: dict[str, Any] = {"email": user.email, "from": before, "to": epsilon}
    if via_request is not None:
        details["via_request"] = via_request
    audit.record(session, actor=actor, action="user.budget_set", target_type="user", target_id=user.id,
                 details=details)
    session.flush()


def set_user_budget(session: Session, *, actor: Actor, user: User, epsilon: float) -> User:
    """Set another user's privacy budget ε (manage_budgets), under the two-person rules; recorded for the
    ceiling and audited."""
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise InvalidInput("a budget is a finite ε >= 0")
    check_may_set_budget(actor, user)
    locked = lock_budgets(session, user_id=user.id, dataset_ids=[])
    _change_budget(session, actor=actor, user=locked, epsilon=epsilon)
    return locked


def raise_budget(session: Session, *, request: Request, actor: Actor) -> None:
    """What approving a budget request does: add the ε asked for to the requester's budget (locked)."""
    user = lock_budgets(session, user_id=request.requester_id, dataset_ids=[])
    check_may_set_budget(actor, user)
    _change_budget(session, actor=actor, user=user,
                   epsilon=user.budget_epsilon + float(request.payload["additional_epsilon"]), via_request=request.id)


# --- jobs without differential privacy ------------------------------------------------------------------


def non_private_allowed(session: Session, user_id: int) -> bool:
    return session.get(NonPrivateAllowance, user_id) is not None


def set_non_private_allowed(session: Session, *, actor: Actor, user: User, allowed: bool) -> bool:
    """Allow (or stop allowing) ``user`` to run jobs without DP, where the node allows such jobs at all
    (manage_budgets or manage_users; not for yourself); audited."""
    if not (actor.can(Capability.manage_budgets) or actor.can(Capability.manage_users)):
        raise Forbidden("allowing jobs without DP needs manage_budgets or manage_users",
                        details={"missing": [str(Capability.manage_budgets), str(Capability.manage_users)]})
    if user.id == actor.id:
        raise Forbidden("nobody allows themselves jobs without DP (two-person rule)",
                        details={"rule": "own_allowance"})
    row = session.get(NonPrivateAllowance, user.id)
    if allowed and row is None:
        session.add(NonPrivateAllowance(user_id=user.id, allowed_by=actor.id))
    elif not allowed and row is not None:
        session.delete(row)
    else:
        return allowed
    audit.record(session, actor=actor, action="user.non_private_jobs_set", target_type="user", target_id=user.id,
                 details={"email": user.email, "allowed": allowed})
    session.flush()
    return allowed


# --- dataset caps -------------------------------------------------------------------------------------


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


def create_policy(session: Session, *, actor: Actor, dataset_id: int | None, max_epsilon: float, note: str = "",
                  settings: NodeSettings) -> ReleasePolicy:
    """Auto-approve private releases costing at most ``max_epsilon`` (on one dataset, or any); at most the
    node's ``max_policy_epsilon``; audited."""
    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    if not (math.isfinite(max_epsilon) and max_epsilon > 0):
        raise InvalidInput("max_epsilon must be a finite number > 0")
    limit = config(session, settings).max_policy_epsilon
    if max_epsilon > limit:
        raise Forbidden(f"an auto-approve policy may name at most ε {limit:g} on this Node (its privacy settings' "
                        f"max_policy_epsilon); {max_epsilon:g} is above it (policy cap rule)",
                        details={"rule": "policy_cap", "max_policy_epsilon": limit})
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


def matching_policy(session: Session, *, requester: User, dataset_ids: list[int], cost: Cost, cfg: PrivacyConfig
                    ) -> ReleasePolicy | None:
    """The first auto-approve policy that covers a private release of this cost: on any dataset or on every
    dataset the release draws on, within the node's policy cap, written by someone else, and never for a
    requester who holds triage_requests (an officer's own release always goes to another officer)."""
    if cost.non_private or Capability.triage_requests in requester.role.capabilities:
        return None
    if cost.epsilon > cfg.max_policy_epsilon:
        return None
    query = select(ReleasePolicy).where(ReleasePolicy.action == "auto_approve",
                                        ReleasePolicy.max_epsilon >= cost.epsilon,
                                        ReleasePolicy.created_by.is_not(None),
                                        ReleasePolicy.created_by != requester.id)
    candidates = session.scalars(query.order_by(ReleasePolicy.id))
    drawn = set(dataset_ids)
    for policy in candidates:
        if policy.dataset_id is None or (drawn and drawn == {policy.dataset_id}):
            return policy
    return None


# --- the budget kind ---------------------------------------------------------------------------------------


def file_budget_request(session: Session, *, actor: Actor, epsilon: float, reason: str,
                        settings: NodeSettings) -> Request:
    """Ask for ``epsilon`` more budget, with a reason; a holder of manage_budgets (not you) decides."""
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


def user_by_id(session: Session, user_id: int) -> User:
    return lookup.user(session, user_id)
