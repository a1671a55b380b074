from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, status

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden
from grid_runtime.core.levels import Level
from grid_runtime.core.schemas import MAX_ID, Id, Page
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node import flows
from grid_runtime.node.budget import service as budget
from grid_runtime.node.deps import DB, Actor, Requires, in_thread, settings
from grid_runtime.node.jobs.models import Result
from grid_runtime.node.requests import schemas, service
from grid_runtime.node.requests.models import Request
from grid_runtime.node.requests.states import RequestKind, RequestState

router = APIRouter(tags=["requests"])


def _summary(actor: Actor, request: Request) -> schemas.RequestOut:
    """A request as ``actor`` may see it: a requester does not see the artifact's fingerprint."""
    out = schemas.RequestOut.model_validate(request)
    out.payload = service.payload_for(actor, request)
    return out


def _detail(actor: Actor, request: Request) -> schemas.RequestDetailOut:
    out = schemas.RequestDetailOut.model_validate(request)
    out.payload = service.payload_for(actor, request)
    return out


Settings = Annotated[NodeSettings, Depends(settings)]


@router.post("/requests", status_code=status.HTTP_201_CREATED)
def file_request(
    body: schemas.RequestIn, session: DB, node: Settings, tasks: BackgroundTasks,
    actor: Actor = Depends(Requires()),
) -> schemas.RequestDetailOut:
    """File a request: ``access`` (a level on a tensor or dataset), ``release`` or ``budget``.

    ``access``: compute or download on a tensor or dataset, with a reason; 409 if you already have that level
    or a pending access request on the target. ``release``: download a result of yours or a private tensor;
    the Node records the cost already charged when its job was admitted and the artifact's fingerprint
    (officers only), and may decide at once (``auto_denied`` with the reason: not differentially private under
    the dp_only policy, or a never-charged cost over your budget or a dataset's cap; ``auto_approved`` under
    another officer's policy, never for officers' own releases). ``budget``: ask for ε more, with a reason.
    """
    if isinstance(body, schemas.ReleaseRequestIn):
        _check_result_visible(session, actor, body)
        request, later = flows.file_release(session, actor=actor, target_type=body.target_type,
                                            target_id=body.target_id, reason=body.reason, settings=node)
        tasks.add_task(later)
    elif isinstance(body, schemas.BudgetRequestIn):
        request = budget.file_budget_request(session, actor=actor, epsilon=body.epsilon, reason=body.reason,
                                             settings=node)
    else:
        request = service.file_access_request(session, actor=actor, target_type=body.target_type,
                                              target_id=body.target_id, level=Level(body.level),
                                              reason=body.reason, state_dir=node.state_dir)
    return _detail(actor, request)


def _check_result_visible(session: DB, actor: Actor, body: schemas.ReleaseRequestIn) -> None:
    """Others' results are invisible to all but officers: to anyone else a missing result gets the same 403 as
    someone else's (``flows.file_release``'s words), so the answer does not tell which result ids exist."""
    if body.target_type != "result" or actor.can(Capability.triage_requests):
        return
    if session.get(Result, body.target_id) is None:
        raise Forbidden(f"result {body.target_id} is not yours; only the user who ran its job may ask for its "
                        "release", details={"rule": "result_owner"})


@router.get("/requests")
async def list_requests(
    session: DB,
    state: Annotated[RequestState | None, Query(alias="status", description="only requests in this state")] = None,
    kind: Annotated[RequestKind | None, Query()] = None,
    requester: Annotated[str | None, Query(max_length=254, description="a user's id or email")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[schemas.RequestOut]:
    """List requests, newest first. Officers (triage_requests) see all; everyone else only their own."""

    def listing() -> Page[schemas.RequestOut]:
        rows, total = service.list_requests(session, actor=actor, state=state, kind=kind, requester=requester,
                                            limit=limit, offset=offset)
        return Page(items=[_summary(actor, r) for r in rows], total=total, limit=limit, offset=offset)

    return await in_thread(session, listing)


@router.get("/requests/{request_id}")
def show_request(
    request_id: Id, session: DB, node: Settings, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """Show a request with every transition (who, when, note); for its requester or an officer.

    For a release, officers (triage_requests) also get the cost card: mechanism and settings, its own ε, the
    user's and the dataset's ε before and after, the remaining budget, the requester's history, the model's
    layers, the training metrics and a plain reading of ε.
    """
    request = service.show(session, actor=actor, request_id=request_id)
    out = _detail(actor, request)
    if flows.may_see_card(actor, request):
        out.card = flows.cost_card(session, request=request, settings=node)
    return out


@router.post("/requests/{request_id}/approve")
def approve_request(
    request_id: Id, session: DB, node: Settings, tasks: BackgroundTasks, body: schemas.ApproveIn | None = None,
    actor: Actor = Depends(Requires()),
) -> schemas.RequestDetailOut:
    """Approve a pending request (access and release: triage_requests; budget: manage_budgets).

    Nobody decides their own request (403, ``details.rule`` "own_request"). A release of a result spends
    nothing more: its cost was charged when its job was admitted; a release of something never charged (a
    private tensor) is charged now, in the same transaction (409 ``budget_exceeded`` naming the cap if it does
    not fit). With ``fingerprint`` (the HMAC on the cost card), 409 if it is not the request's or the artifact
    changed. A budget request raises the requester's budget by the ε asked for (403 if their role outranks
    yours). 409 naming the state if the request was already decided, withdrawn or expired. An access request
    whose target was deleted or changed since it was filed (its recorded fingerprint) is never granted: it is
    cancelled (``expired``, with a note for the requester) and the answer is 409 naming why.
    """
    stale = service.stale_access_target(session, actor=actor, request_id=request_id, state_dir=node.state_dir)
    if stale is not None:
        session.commit()  # the cancellation stands; the approval does not
        raise stale
    request, later = flows.approve(session, actor=actor, request_id=request_id, note=body.note if body else None,
                                   fingerprint=body.fingerprint if body else None, settings=node)
    tasks.add_task(later)
    return _detail(actor, request)


@router.post("/requests/{request_id}/deny")
def deny_request(
    request_id: Id, body: schemas.DenyIn, session: DB, node: Settings, tasks: BackgroundTasks,
    actor: Actor = Depends(Requires()),
) -> schemas.RequestDetailOut:
    """Deny a pending request with a reason the requester reads (the capability that decides its kind)."""
    request, later = flows.deny(session, actor=actor, request_id=request_id, reason=body.reason, settings=node)
    tasks.add_task(later)
    return _detail(actor, request)


@router.post("/requests/{request_id}/withdraw")
def withdraw_request(
    request_id: Id, session: DB, body: schemas.WithdrawIn | None = None, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """Withdraw your own pending request."""
    request = service.withdraw(session, actor=actor, request_id=request_id, note=body.note if body else None)
    return _detail(actor, request)
