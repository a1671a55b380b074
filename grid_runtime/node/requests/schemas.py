from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag

from grid_runtime.core.schemas import Id, Out, Schema
from grid_runtime.node.requests.states import RequestKind, RequestState

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class AccessRequestIn(Schema):
    """Ask for a higher level on a tensor or dataset. (Later kinds join this as a union on ``kind``.)"""

    kind: Literal["access"]
    target_type: Literal["tensor", "dataset"]
    target_id: Id
    level: Literal["compute", "download"]
    reason: Reason


class ReleaseRequestIn(Schema):
    """Ask to download a result of yours or a private tensor (the SDK's ``get()``). The Node computes the
    privacy cost and the fingerprint itself; nothing about them is taken from you."""

    kind: Literal["release"]
    target_type: Literal["result", "tensor"]
    target_id: Id
    reason: Reason = "release requested with get()"


class BudgetRequestIn(Schema):
    """Ask for more privacy budget: ``epsilon`` more, with a reason (manage_budgets decides)."""

    kind: Literal["budget"]
    epsilon: float = Field(gt=0, le=1e6, allow_inf_nan=False, description="how much more ε you ask for")
    reason: Reason


def _kind_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return f"kind={kind}" if isinstance(kind, str) else None


# Tagged "kind=<kind>" so that a validation error names the kind it was checked as ("kind=budget.epsilon").
RequestIn = Annotated[
    Annotated[AccessRequestIn, Tag("kind=access")] | Annotated[ReleaseRequestIn, Tag("kind=release")]
    | Annotated[BudgetRequestIn, Tag("kind=budget")],
    Discriminator(_kind_tag, custom_error_type="invalid_kind",
                  custom_error_message="kind must be one of access, release, budget"),
]

Sha256 = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")]


class ApproveIn(Schema):
    note: Note | None = None
    fingerprint: Sha256 | None = Field(
        default=None, description="release only: the fingerprint you inspected (HMAC-SHA256 on the cost card); "
                                  "refused if it is not the request's or the artifact changed")


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
    payload: dict[str, Any] = Field(description="kind-specific: access, the level asked for; release, the cost, "
                                    "the mechanism, whether it was paid at admission (and, for officers, the "
                                    "fingerprint); budget, the ε asked for")
    reason: str
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: int | None
    decision_note: str | None = Field(description="the officer's note on approval, the reason on denial")


class RequestDetailOut(RequestOut):
    events: list[RequestEventOut]
    card: dict[str, Any] | None = Field(
        default=None, description="release, for officers: the cost card (see docs/privacy.md)")
