"""API shapes of the Node's Network associations and statistics."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grid_runtime.core.schemas import Out, Schema


class JoinIn(Schema):
    network_url: str = Field(min_length=1, max_length=255, description="the Network's URL (https unless allowed)")
    invitation: str | None = Field(None, min_length=1, max_length=128, description="a one-time invitation code")
    node_url: str | None = Field(None, min_length=1, max_length=255,
                                 description="the URL the Network reaches this Node at (default: public_url)")


class AssociationOut(Out):
    id: int
    network_url: str
    network_name: str
    remote_id: int
    state: str
    created_at: datetime
    last_push_at: datetime | None
    last_error: str
    ended_at: datetime | None


class SyncOut(Schema):
    association: AssociationOut
    pushed: int
    deleted: int


class StatisticsOut(Schema):
    """What a Node tells those who may read its statistics: counts only, never data or names."""

    node: str
    users: int
    tensors: int
    datasets: int
    requests: dict[str, int] = Field(description="requests by state")
    jobs: dict[str, int] = Field(description="jobs by state")
    privacy_events: int = Field(description="privacy events in the ledger (differentially private ones)")
    non_private_events: int
    epsilon_spent_simple_sum: float = Field(description="the sum of each event's own ε over every user (an upper "
                                                        "figure for comparison; each user's budget is a Rényi filter)")
    at: datetime
