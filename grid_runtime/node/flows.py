"""What crosses domains: deciding requests (requests + budget ledger + audit in one transaction, then the
webhook after it commits) and the officer's cost card (requests, ledger, jobs, model spec, privacy reading).

The deciding functions run in the caller's transaction (the route's ``DB``); what must happen only once it
has committed (the webhook) is returned as a callable for the route to schedule as a background task,
which Starlette runs after the response, so after the commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.errors import NotFound
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.budget import service as budget
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.notifications import service as notifications
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.models import Request
from grid_runtime.node.requests.states import DECISIONS, RequestKind, RequestState
from grid_runtime.node.users.models import User
from grid_runtime.privacy import reading

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

Later = Callable[[], None]
HISTORY_LIMIT = 20


def _noop() -> None:
    return None


def after_decision(session: Session, request: Request, settings: NodeSettings) -> Later:
    """The webhook delivery for ``request`` if it was decided and the node has a webhook (else a no-op)."""
    if RequestState(request.state) not in DECISIONS:
        return _noop
    url = budget.config(session, settings).webhook_url
    if not url:
        return _noop
    payload = notifications.decision_payload(request)
    secret = notifications.signing_secret(settings.state_dir)

    def deliver() -> None:
        notifications.deliver(url, secret, payload)

    return deliver


def approve(session: Session, *, actor: Actor, request_id: int, note: str | None, fingerprint: str | None,
            settings: NodeSettings) -> tuple[Request, Later]:
    """Approve a request. For a release: the fingerprint check, the budget re-check under the user's row
    lock, the ledger debit and the state change commit together (``budget.service.debit_release``)."""
    request = requests.approve(session, actor=actor, request_id=request_id, note=note, fingerprint=fingerprint,
                               settings=settings)
    return request, after_decision(session, request, settings)


def deny(session: Session, *, actor: Actor, request_id: int, reason: str,
         settings: NodeSettings) -> tuple[Request, Later]:
    request = requests.deny(session, actor=actor, request_id=request_id, reason=reason)
    return request, after_decision(session, request, settings)


def file_release(session: Session, *, actor: Actor, target_type: str, target_id: int, reason: str,
                 settings: NodeSettings) -> tuple[Request, Later]:
    """File a release request; auto-decisions at creation are decisions too (the webhook hears them)."""
    request = budget.file_release_request(session, actor=actor, target_type=target_type, target_id=target_id,
                                          reason=reason, settings=settings)
    return request, after_decision(session, request, settings)


# --- the cost card -------------------------------------------------------------------------------------


def _figure(value: float) -> float | None:
    return None if math.isinf(value) else value


def _side(spent: budget.Spent, cost: budget.Cost, cap: float) -> dict[str, Any]:
    after = spent.epsilon_with(cost)
    return {
        "cap_epsilon": cap,
        "epsilon_before": spent.epsilon,
        "epsilon_after": _figure(after),
        "simple_sum_before": spent.simple_sum,
        "simple_sum_after": _figure(spent.simple_sum + cost.epsilon),
        "remaining_before": max(0.0, cap - spent.epsilon),
        "remaining_after": None if math.isinf(after) else max(0.0, cap - after),
        "events": spent.events,
        "non_private_releases": spent.non_private_releases,
        "within_cap": not math.isinf(after) and after <= cap + 1e-12,
    }


def cost_card(session: Session, *, request: Request, settings: NodeSettings) -> dict[str, Any]:
    """Everything an officer needs to decide a release: mechanism and settings, the request's own ε, the
    user's and the dataset's ε before and after (before excludes this request's own debit, if any), the
    remaining budget, the requester's history, the model as a layer table, the officer-only training
    metrics and a plain reading of ε."""
    cfg = budget.config(session, settings)
    cost = budget.cost_of(request.payload.get("event"), cfg)
    user = session.get(User, request.requester_id)
    assert user is not None
    user_spent = budget.spent(session, cfg, user_id=user.id, excluding_request=request.id)
    card: dict[str, Any] = {
        "mechanism": cost.mechanism,
        "non_private": cost.non_private,
        "epsilon": _figure(cost.epsilon),
        "delta": cfg.delta,
        "rdp_order": cfg.order,
        "rdp": _figure(cost.rdp),
        "sha256": request.payload.get("sha256"),
        "release_policy": cfg.release_policy,
        "user": {"id": user.id, "email": user.email, **_side(user_spent, cost, user.budget_epsilon)},
        "dataset": None,
        "reading": reading.plain_reading(cost.epsilon, cfg.delta),
        "settings": None,
        "layers": None,
        "metrics": None,
    }
    dataset_id = request.payload.get("dataset_id")
    if dataset_id is not None:
        dataset = session.get(Dataset, dataset_id)
        cap = budget.dataset_cap(session, dataset_id)
        on_dataset = budget.spent(session, cfg, dataset_id=dataset_id, excluding_request=request.id)
        card["dataset"] = {
            "id": dataset_id, "name": dataset.name if dataset else None, "cap_epsilon": cap,
            "epsilon_before": on_dataset.epsilon, "epsilon_after": _figure(on_dataset.epsilon_with(cost)),
            "remaining_before": None if cap is None else max(0.0, cap - on_dataset.epsilon),
            "events": on_dataset.events,
        }
    if request.target_type == "result" and request.target_id is not None:
        try:
            target = budget.artifact(session, target_type="result", target_id=request.target_id)
        except NotFound:  # the result is gone: the card still shows the recorded cost
            target = None
        job = target.job if target else None
        if job is not None:
            card["settings"] = {"job_id": job.id, "kind": job.kind, "inputs": job.inputs, **(job.settings or {})}
            card["metrics"] = job.metrics or []
            if job.spec:
                from grid_runtime.compute.spec import SpecError, layer_table

                try:
                    card["layers"] = layer_table(job.spec)
                except (SpecError, ValueError):
                    card["layers"] = None
    history = session.scalars(
        select(Request).where(Request.requester_id == user.id, Request.id != request.id)
        .order_by(Request.id.desc()).limit(HISTORY_LIMIT)
    )
    card["history"] = [
        {"id": r.id, "kind": r.kind, "state": r.state, "created_at": r.created_at.isoformat(),
         "epsilon": (r.payload or {}).get("epsilon"), "target_type": r.target_type, "target_id": r.target_id,
         "decision_note": r.decision_note}
        for r in history
    ]
    return card


def may_see_card(actor: Actor, request: Request) -> bool:
    return request.kind == RequestKind.release and requests.DECIDED_WITH[RequestKind.release] in actor.capabilities
