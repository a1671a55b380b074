"""Budget routes: budgets and the ledger, dataset caps, officers' release policies, the node's privacy
settings and webhook secret, and the download of an approved release."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, status
from fastapi.responses import Response, StreamingResponse

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Conflict, Forbidden
from grid_runtime.core.schemas import MAX_ID, Id, Page
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node import flows, lookup
from grid_runtime.node.audit import service as audit
from grid_runtime.node.budget import fingerprints, ledger, schemas, service
from grid_runtime.node.budget.models import LedgerEntry
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.deps import DB, Actor, Requires, settings
from grid_runtime.node.jobs.models import Result
from grid_runtime.node.notifications import service as notifications
from grid_runtime.node.permissions.service import resolve_user
from grid_runtime.node.requests import service as requests
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.tensors.router import SHA256_HEADER, Store
from grid_runtime.node.users.models import User


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """At the Node's start: make sure the fingerprint secret exists (generated once, owner-only)."""
    node: NodeSettings = app.state.settings
    fingerprints.node_secret(node.state_dir)
    yield


router = APIRouter(tags=["budget"], lifespan=lifespan, route_class=NameRoute)
Settings = Annotated[NodeSettings, Depends(settings)]


def _budget_out(session: DB, user: User, node: NodeSettings) -> schemas.BudgetOut:
    cfg = service.config(session, node)
    figures = service.figures(session, cfg, user)
    return schemas.BudgetOut(
        user_id=user.id, email=user.email, budget_epsilon=figures.budget_epsilon,
        spent_epsilon=figures.spent.epsilon, simple_sum_epsilon=figures.spent.simple_sum,
        remaining_epsilon=figures.remaining_epsilon, ceiling_epsilon=figures.ceiling_epsilon,
        spent_rdp=figures.spent.rdp, rdp_budget=figures.rdp_budget, events=figures.spent.events,
        non_private_releases=figures.spent.non_private_events,
        non_private_jobs_allowed=service.non_private_allowed(session, user.id), delta=cfg.delta,
        rdp_order=cfg.order,
    )


def _entries(session: DB, rows: list[LedgerEntry]) -> list[schemas.LedgerEntryOut]:
    charged = ledger.charged_datasets(session, [r.id for r in rows])
    return [schemas.LedgerEntryOut.model_validate(r).model_copy(update={"dataset_ids": charged[r.id]}) for r in rows]


@router.get("/budget")
def my_budget(session: DB, node: Settings, actor: Actor = Depends(Requires())) -> schemas.BudgetOut:
    """Your privacy budget, what you spent (the enforced filter figure and the simple sum), the largest single
    further event that still fits, and the highest budget you ever had."""
    return _budget_out(session, actor.user, node)


@router.get("/budget/ledger")
def my_ledger(session: DB, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
              actor: Actor = Depends(Requires())) -> Page[schemas.LedgerEntryOut]:
    """Your privacy events, newest first."""
    rows, total = service.entries(session, user_id=actor.id, limit=limit, offset=offset)
    return Page(items=_entries(session, rows), total=total, limit=limit, offset=offset)


@router.get("/budget/users/{ref}")
def user_budget(ref: str, session: DB, node: Settings,
                actor: Actor = Depends(Requires(Capability.manage_budgets))) -> schemas.BudgetOut:
    """A user's budget and spending, by id or email (manage_budgets)."""
    return _budget_out(session, resolve_user(session, ref), node)


@router.get("/budget/users/{ref}/ledger")
def user_ledger(ref: str, session: DB, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                actor: Actor = Depends(Requires(Capability.manage_budgets))) -> Page[schemas.LedgerEntryOut]:
    """A user's privacy events, newest first (manage_budgets)."""
    user = resolve_user(session, ref)
    rows, total = service.entries(session, user_id=user.id, limit=limit, offset=offset)
    return Page(items=_entries(session, rows), total=total, limit=limit, offset=offset)


@router.put("/budget/users/{ref}/non-private")
def allow_non_private(ref: str, body: schemas.NonPrivateIn, session: DB,
                      actor: Actor = Depends(Requires())) -> schemas.NonPrivateOut:
    """Allow (or stop allowing) a user to run jobs without differential privacy, where the node's privacy
    settings allow such jobs at all (manage_budgets or manage_users; not yourself); audited. Their results
    never leave without an officer's decision."""
    if not (actor.can(Capability.manage_budgets) or actor.can(Capability.manage_users)):
        # Before the lookup: "no such user" and "someone else" get the same answer (issue 11).
        raise Forbidden("allowing jobs without DP needs manage_budgets or manage_users",
                        details={"missing": [str(Capability.manage_budgets), str(Capability.manage_users)]})
    user = resolve_user(session, ref)
    allowed = service.set_non_private_allowed(session, actor=actor, user=user, allowed=body.allowed)
    return schemas.NonPrivateOut(user_id=user.id, email=user.email, allowed=allowed)


def _dataset_out(session: DB, dataset: Dataset, node: NodeSettings) -> schemas.DatasetBudgetOut:
    cfg = service.config(session, node)
    spent = service.spent(session, cfg, dataset_id=dataset.id)
    cap = service.dataset_cap(session, dataset.id)
    return schemas.DatasetBudgetOut(
        dataset_id=dataset.id, name=dataset.name, cap_epsilon=cap, spent_epsilon=spent.epsilon,
        simple_sum_epsilon=spent.simple_sum, remaining_epsilon=None if cap is None else spent.remaining(cap),
        events=spent.events, delta=cfg.delta, rdp_order=cfg.order,
    )


@router.get("/budget/datasets/{dataset_id}")
def dataset_budget(dataset_id: Id, session: DB, node: Settings,
                   actor: Actor = Depends(Requires(Capability.manage_budgets))) -> schemas.DatasetBudgetOut:
    """A dataset's privacy cap and what all users together spent on it (manage_budgets): every event charged
    to it, i.e. of every job that read a tensor it holds."""
    return _dataset_out(session, lookup.dataset(session, dataset_id), node)


@router.put("/budget/datasets/{dataset_id}")
def set_dataset_cap(dataset_id: Id, body: schemas.CapIn, session: DB, node: Settings,
                    actor: Actor = Depends(Requires(Capability.manage_budgets))) -> schemas.DatasetBudgetOut:
    """Set a dataset's privacy cap (null removes it): what all users together may learn (manage_budgets)."""
    service.set_dataset_cap(session, actor=actor, dataset_id=dataset_id, epsilon=body.epsilon)
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None
    return _dataset_out(session, dataset, node)


@router.get("/release-policies")
def list_policies(session: DB, actor: Actor = Depends(Requires(Capability.triage_requests))) -> list[schemas.PolicyOut]:
    """The officers' standing release policies, applied when a release request is created (triage_requests)."""
    return [schemas.PolicyOut.model_validate(p) for p in service.list_policies(session)]


@router.post("/release-policies", status_code=status.HTTP_201_CREATED)
def create_policy(body: schemas.PolicyIn, session: DB, node: Settings,
                  actor: Actor = Depends(Requires(Capability.triage_requests))) -> schemas.PolicyOut:
    """Auto-approve private releases costing at most ``max_epsilon`` (on a dataset, or any), at most the node's
    ``max_policy_epsilon`` (403 naming the rule above it). A policy never covers its author's own requests nor
    those of anyone holding triage_requests (triage_requests)."""
    policy = service.create_policy(session, actor=actor, dataset_id=body.dataset_id, max_epsilon=body.max_epsilon,
                                   note=body.note, settings=node)
    return schemas.PolicyOut.model_validate(policy)


@router.delete("/release-policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_policy(policy_id: Id, session: DB, actor: Actor = Depends(Requires(Capability.triage_requests))) -> None:
    """Remove a release policy (triage_requests)."""
    service.delete_policy(session, actor=actor, policy_id=policy_id)


def _settings_out(session: DB, node: NodeSettings) -> schemas.PrivacySettingsOut:
    cfg = service.config(session, node)
    return schemas.PrivacySettingsOut(delta=cfg.delta, rdp_order=cfg.order, release_policy=cfg.release_policy,
                                      non_private_jobs=cfg.non_private_jobs,
                                      max_policy_epsilon=cfg.max_policy_epsilon, webhook_url=cfg.webhook_url,
                                      request_ttl_seconds=node.request_ttl_seconds)


@router.get("/privacy/settings")
def privacy_settings(session: DB, node: Settings, actor: Actor = Depends(Requires())) -> schemas.PrivacySettingsOut:
    """The node's δ, Rényi order, release policy and request lifetime (everyone may read them); the webhook URL
    only for holders of edit_settings (it may carry a secret), null for everyone else."""
    out = _settings_out(session, node)
    return out if actor.can(Capability.edit_settings) else out.model_copy(update={"webhook_url": None})


@router.patch("/privacy/settings")
def update_privacy_settings(body: schemas.PrivacySettingsIn, session: DB, node: Settings,
                            actor: Actor = Depends(Requires(Capability.edit_settings))) -> schemas.PrivacySettingsOut:
    """Change the release policy, the decision webhook's URL, whether jobs without DP may run, or the largest
    ε an auto-approve policy may name (edit_settings). The webhook must be https:// to a public address unless
    the operator allows private ones (``webhook_allow_private``)."""
    if body.webhook_url:
        notifications.check_url(body.webhook_url, allow_private=node.webhook_allow_private)
    service.update_settings(session, actor=actor, release_policy=body.release_policy, webhook_url=body.webhook_url,
                            clear_webhook=body.clear_webhook, non_private_jobs=body.non_private_jobs,
                            max_policy_epsilon=body.max_policy_epsilon)
    return _settings_out(session, node)


@router.post("/privacy/webhook-secret")
def rotate_webhook_secret(session: DB, node: Settings, body: schemas.SecretIn | None = None,
                          actor: Actor = Depends(Requires(Capability.edit_settings))) -> schemas.SecretOut:
    """Set the webhook signing secret (yours, or a new random one); shown once (edit_settings)."""
    secret = notifications.set_signing_secret(node.state_dir, body.secret if body else None)
    audit.record(session, actor=actor, action="privacy.webhook_secret_set", target_type="node",
                 details={"chosen": bool(body and body.secret)})
    return schemas.SecretOut(secret=secret)


@router.get("/releases/{request_id}/data", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}, "application/json": {}}}})
def download_release(request_id: Id, session: DB, store: Store, node: Settings,
                     actor: Actor = Depends(Requires())) -> Response:
    """Download what an approved release request released (its requester only): a result's safetensors or a
    statistic's JSON value, or a private tensor; its sha256 is in X-Content-SHA256. A request you may not see
    answers 404, like one that does not exist."""
    requests.visible_request(session, actor=actor, request_id=request_id)
    request, target = flows.released_artifact(session, actor=actor, request_id=request_id, settings=node)
    audit.record(session, actor=actor, action="release.downloaded", target_type=target.target_type,
                 target_id=target.target_id, details={"request_id": request_id, "sha256": target.sha256})
    if target.target_type == "tensor":
        tensor = session.get(Tensor, target.target_id)
        assert tensor is not None
        key, size = tensor.object_key, tensor.size_bytes
    else:
        result = session.get(Result, target.target_id)
        assert result is not None
        if result.object_key is None:
            body = json.dumps(result.value, sort_keys=True, separators=(",", ":")).encode()
            return Response(body, media_type="application/json", headers={SHA256_HEADER: result.sha256})
        key, size = result.object_key, result.size_bytes
    if not store.exists(key):
        raise Conflict(f"the stored data of {target.target_type} {target.target_id} is missing")
    return StreamingResponse(store.iter_chunks(key), media_type="application/octet-stream",
                             headers={SHA256_HEADER: target.sha256, "Content-Length": str(size),
                                      "Content-Disposition": f'attachment; filename="release-{request_id}"'})
