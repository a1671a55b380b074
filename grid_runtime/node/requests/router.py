from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from grid_runtime.core.levels import Level
from grid_runtime.core.schemas import Page
from grid_runtime.node.deps import DB, Actor, Requires
from grid_runtime.node.requests import schemas, service
from grid_runtime.node.requests.states import RequestKind, RequestState

router = APIRouter(tags=["requests"])


@router.post("/requests", status_code=status.HTTP_201_CREATED)
def file_request(
    body: schemas.AccessRequestIn, session: DB, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """File a request. Kind ``access``: ask for compute or download on a tensor or dataset, with a reason.

    409 if you already have that level or already have a pending access request on the target.
    """
    request = service.file_access_request(session, actor=actor, target_type=body.target_type,
                                          target_id=body.target_id, level=Level(body.level), reason=body.reason)
    return schemas.RequestDetailOut.model_validate(request)


@router.get("/requests")
def list_requests(
    session: DB,
    state: Annotated[RequestState | None, Query(alias="status", description="only requests in this state")] = None,
    kind: Annotated[RequestKind | None, Query()] = None,
    requester: Annotated[str | None, Query(max_length=254, description="a user's id or email")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[schemas.RequestOut]:
    """List requests, newest first. Officers (triage_requests) see all; everyone else only their own."""
    rows, total = service.list_requests(session, actor=actor, state=state, kind=kind, requester=requester,
                                        limit=limit, offset=offset)
    return Page(items=[schemas.RequestOut.model_validate(r) for r in rows], total=total, limit=limit,
                offset=offset)


@router.get("/requests/{request_id}")
def show_request(request_id: int, session: DB, actor: Actor = Depends(Requires())) -> schemas.RequestDetailOut:
    """Show a request with every transition (who, when, note); for its requester or an officer."""
    return schemas.RequestDetailOut.model_validate(service.show(session, actor=actor, request_id=request_id))


@router.post("/requests/{request_id}/approve")
def approve_request(
    request_id: int, session: DB, body: schemas.ApproveIn | None = None, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """Approve a pending request (access: triage_requests; creates or raises the requester's grant).

    409 naming the state if the request was already decided, withdrawn or expired.
    """
    request = service.approve(session, actor=actor, request_id=request_id, note=body.note if body else None)
    return schemas.RequestDetailOut.model_validate(request)


@router.post("/requests/{request_id}/deny")
def deny_request(
    request_id: int, body: schemas.DenyIn, session: DB, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """Deny a pending request with a reason the requester reads (access: triage_requests)."""
    request = service.deny(session, actor=actor, request_id=request_id, reason=body.reason)
    return schemas.RequestDetailOut.model_validate(request)


@router.post("/requests/{request_id}/withdraw")
def withdraw_request(
    request_id: int, session: DB, body: schemas.WithdrawIn | None = None, actor: Actor = Depends(Requires())
) -> schemas.RequestDetailOut:
    """Withdraw your own pending request."""
    request = service.withdraw(session, actor=actor, request_id=request_id, note=body.note if body else None)
    return schemas.RequestDetailOut.model_validate(request)
