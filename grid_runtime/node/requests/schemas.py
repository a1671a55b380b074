from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from grid_runtime.core.schemas import Out, Schema
from grid_runtime.node.requests.states import RequestKind, RequestState

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class AccessRequestIn(Schema):
    """Ask for a higher level on a tensor or dataset. (Later kinds join this as a union on ``kind``.)"""

    kind: Literal["access"]
    target_type: Literal["tensor", "dataset"]
    target_id: int = Field(ge=1)
    level: Literal["compute", "download"]
    reason: Reason


class ApproveIn(Schema):
    note: Note | None = None


class DenyIn(Schema):
    reason: Reason = Field(description="shown to the requester")


class WithdrawIn(Schema):
    note: Note | None = None


class RequestEventOut(Out):
    id: int
    from_state: RequestState | None
    to_state: RequestState
    actor_id: int | None
    note: str | None
    at: datetime


class RequestOut(Out):
    id: int
    kind: RequestKind
    state: RequestState
    requester_id: int
    requester_email: str
    target_type: str | None
    target_id: int | None
    payload: dict[str, Any] = Field(description="kind-specific: for access, the level asked for")
    reason: str
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: int | None
    decision_note: str | None = Field(description="the officer's note on approval, the reason on denial")


class RequestDetailOut(RequestOut):
    events: list[RequestEventOut]
