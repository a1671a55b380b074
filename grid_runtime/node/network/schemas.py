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
    network_ca_pem: str | None = Field(None, min_length=1, description=(
        "PEM text of the CA certificate(s) the Network's certificate chains to (at most 64 KiB, 10 certificates): "
        "every call to this Network is verified against exactly these roots, not the public CAs"))
    node_ca_pem: str | None = Field(None, min_length=1, description=(
        "PEM text of the CA certificate(s) this Node's own URL chains to, sent to the Network so that it verifies "
        "this Node against them when it reads its statistics"))


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
    network_ca_sha256: str | None = Field(None, description="SHA-256 of the pinned Network root(s) (DER, hex, "
                                                             "comma-separated); null: the public CAs")
    node_ca_sha256: str | None = Field(None, description="SHA-256 of the Node root(s) sent to the Network")


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
