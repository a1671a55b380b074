"""The Network's API shapes, kept apart from its tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from grid_runtime.core.accounts.schemas import LoginIn, RoleOut, SessionOut, SetupIn, TokenCreateIn  # noqa: F401  (re-exported)
from grid_runtime.core.capabilities import NetworkCapability
from grid_runtime.core.levels import Visibility
from grid_runtime.core.schemas import Email, Id, Name, Out, Password, Schema


def _normalised(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Tag = Annotated[str, BeforeValidator(_normalised), StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
"""As on the Node: lower-case letters, digits and ``_ . : -``; at most 64 characters."""
Kind = Literal["tensor", "dataset"]
NodeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


# --- accounts ------------------------------------------------------------------------------------------------

class TokenOut(Out):
    id: int
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


class RoleCreateIn(Schema):
    name: Name
    description: str = Field("", max_length=500)
    capabilities: list[NetworkCapability] = Field(default_factory=list, max_length=len(NetworkCapability))


class UserOut(Out):
    id: int
    email: str
    full_name: str
    role: str
    disabled: bool
    created_at: datetime


class UserCreateIn(Schema):
    email: Email
    password: Password
    full_name: str = Field("", max_length=128)
    role: Name | None = None


class UserUpdateIn(Schema):
    role: Name | None = None
    disabled: bool | None = None


class AuditEventOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    action: str
    target_type: str
    target_id: int | None
    details: dict[str, object]
    client_address: str | None


# --- associations ------------------------------------------------------------------------------------------

class JoinIn(Schema):
    """What a Node sends to ask to join (``POST /associations``, public)."""

    node_name: NodeName
    node_url: str = Field(min_length=1, max_length=255)
    node_credential: str = Field(min_length=32, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                                 description="the secret this Network will present to read the Node's statistics")
    invitation: str | None = Field(None, min_length=1, max_length=128)
    node_ca_pem: str | None = Field(None, min_length=1, description=(
        "PEM text of the CA certificate(s) the Node's URL chains to (at most 64 KiB, 10 certificates): this Network "
        "verifies the Node against exactly these roots when it reads its statistics, not the public CAs"))


class JoinOut(Schema):
    association_id: int
    state: str
    network_name: str
    push_credential: str = Field(description="the secret the Node presents to push; shown only in this response")


class AssociationOut(Out):
    id: int
    node_name: str
    node_url: str
    state: str
    requested_at: datetime
    decided_at: datetime | None
    note: str
    last_push_at: datetime | None
    invited: bool = False
    node_ca_sha256: str | None = Field(None, description="SHA-256 of the Node root(s) pinned for this association "
                                                          "(DER, hex, comma-separated); null: the public CAs")
    requester_address: str | None = Field(None, description="the client address the join request came from (an "
                                                             "IPv6 one's /64); null for a join with an invitation")
    expires_at: datetime | None = Field(None, description="when a pending request expires without a decision "
                                                          "(join_request_ttl_seconds); null once decided")


class DecisionIn(Schema):
    note: str = Field("", max_length=500)


class InvitationIn(Schema):
    note: str = Field("", max_length=500)


class InvitationOut(Schema):
    id: int
    code: str = Field(description="the one-time code; shown only in this response")
    expires_at: datetime


class PeerAssociationOut(Schema):
    """What a Node learns about its own association."""

    association_id: int
    state: str
    network_name: str


# --- the catalogue -----------------------------------------------------------------------------------------

MAX_DIMS = 32


class EntryIn(Schema):
    """One tensor's or dataset's metadata, as a user without download rights sees it on its Node."""

    kind: Kind
    id: Id
    name: str = Field(min_length=1, max_length=128)
    description: str = Field("", max_length=2000)
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    shape: list[Annotated[int, Field(ge=0, le=2**53)]] | None = Field(None, max_length=MAX_DIMS)
    dtype: str | None = Field(None, max_length=16, pattern=r"^[a-z0-9_]+$")
    visibility: Visibility
    created_at: datetime | None = None


class RefIn(Schema):
    kind: Kind
    id: Id


class PushIn(Schema):
    """One push. ``node`` must be the pushing Node's own name (a Node writes only its own objects).

    A reconciliation is a run of pushes from one with ``begin_sync`` to one with ``end_sync`` (both on a single
    push): at its end every entry of this Node that the run did not send is removed."""

    node: NodeName
    upserts: list[EntryIn] = Field(default_factory=list)
    deletes: list[RefIn] = Field(default_factory=list)
    begin_sync: bool = False
    end_sync: bool = False


class PushOut(Schema):
    upserted: int
    deleted: int
    removed_by_sync: int
    entries: int


class HitOut(Schema):
    node: str
    node_url: str
    kind: str
    id: int = Field(description="the object's id on its Node")
    name: str
    description: str
    tags: list[str]
    shape: list[int] | None
    dtype: str | None
    visibility: str
    created_at: datetime | None
    last_seen: datetime | None = Field(description="when the Network last heard from this Node")
    stale: bool = Field(description="not heard from the Node for stale_after_seconds: this may be out of date")


class SearchOut(Schema):
    items: list[HitOut]
    total: int = Field(description="matches, counted up to 1,000 or the end of the page (then total_is_exact is "
                                   "false: at least this many)")
    total_is_exact: bool = True
    limit: int
    offset: int


class NodeOut(Schema):
    association_id: int
    name: str
    url: str
    last_seen: datetime | None
    stale: bool
    entries: int
