from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from grid_runtime.core.schemas import Id, Out, Schema

Epsilon = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]


class BudgetOut(Schema):
    """A user's privacy budget and what the ledger says they spent (filter figure and simple sum)."""

    user_id: int
    email: str
    budget_epsilon: float
    spent_epsilon: float = Field(description="the Rényi filter's sum at the node's order, converted to ε at δ")
    simple_sum_epsilon: float = Field(description="the sum of each event's own ε, for comparison (not enforced)")
    remaining_epsilon: float = Field(
        description="the largest ε of one further event that still fits the Rényi filter (its own ε at δ, for the "
                    "Gaussian mechanism; other mechanisms of the same RDP differ somewhat). Not the budget minus "
                    "the spent ε: the filter counts RDP at the node's order")
    ceiling_epsilon: float = Field(
        description="the highest budget you ever had: the ε the filter's guarantee holds at over everything you "
                    "were charged")
    spent_rdp: float
    rdp_budget: float = Field(description="the RDP at the node's order that converts to the budget at δ")
    events: int
    non_private_releases: int = Field(description="events outside differential privacy (jobs run without DP, raw "
                                      "tensors released): the filter cannot count them")
    non_private_jobs_allowed: bool = Field(description="whether an administrator allowed jobs without DP")
    delta: float
    rdp_order: float


class DatasetBudgetOut(Schema):
    dataset_id: int
    name: str
    cap_epsilon: float | None
    spent_epsilon: float
    simple_sum_epsilon: float
    remaining_epsilon: float | None = Field(
        description="the largest ε of one further (Gaussian-mechanism) event its cap still admits; null: no cap")
    events: int
    delta: float
    rdp_order: float


class CapIn(Schema):
    epsilon: Epsilon | None = Field(description="the dataset's cap; null removes it")


class LedgerEntryOut(Out):
    id: int
    at: datetime
    user_id: int
    user_email: str
    dataset_id: int | None
    dataset_ids: list[int] = Field(default_factory=list, description="every dataset the event was charged to")
    job_id: int | None = Field(description="the job whose admission charged it")
    request_id: int | None
    result_id: int | None
    tensor_id: int | None
    event: dict[str, Any]
    non_private: bool
    rdp_order: float
    rdp: float | None
    epsilon: float | None
    delta: float


class PolicyIn(Schema):
    action: Literal["auto_approve"] = "auto_approve"
    dataset_id: Id | None = Field(default=None, description="null: releases on any dataset")
    max_epsilon: float = Field(gt=0, le=1e6, allow_inf_nan=False)
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class PolicyOut(Out):
    id: int
    action: str
    dataset_id: int | None
    max_epsilon: float
    note: str
    created_by: int | None
    created_at: datetime


class PrivacySettingsOut(Schema):
    delta: float
    rdp_order: float
    release_policy: str
    non_private_jobs: bool = Field(description="whether jobs without DP may run (for users allowed them)")
    max_policy_epsilon: float = Field(description="the largest ε an auto-approve policy may name")
    webhook_url: str | None = Field(description="the decision webhook; null unless you hold edit_settings")
    request_ttl_seconds: int


WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000,
                                              pattern=r"^https?://[^\s]+$")]


class PrivacySettingsIn(Schema):
    release_policy: Literal["dp_only", "allow_non_private"] | None = None
    webhook_url: WebhookUrl | None = Field(default=None, description="http(s) URL that receives each decision")
    clear_webhook: bool = False
    non_private_jobs: bool | None = Field(default=None, description="allow jobs without DP (for allowed users)")
    max_policy_epsilon: float | None = Field(default=None, ge=0, le=1e6, allow_inf_nan=False,
                                             description="the largest ε an auto-approve policy may name")


class NonPrivateIn(Schema):
    allowed: bool = Field(description="whether the user may run jobs without DP (where the node allows them)")


class NonPrivateOut(Schema):
    user_id: int
    email: str
    allowed: bool


class SecretIn(Schema):
    secret: Annotated[str, StringConstraints(min_length=16, max_length=256)] | None = Field(
        default=None, description="your own signing secret; a random one if omitted")


class SecretOut(Schema):
    secret: str = Field(description="shown once; the Node keeps it owner-only in its state directory")
