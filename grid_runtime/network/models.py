"""Every table of the Network."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from grid_runtime.core.accounts.models import RoleColumns, SetupTokenColumns, TokenColumns, UserColumns
from grid_runtime.core.database import utcnow
from grid_runtime.network.database import NetworkBase


class Role(RoleColumns, NetworkBase):
    __tablename__ = "roles"


class User(UserColumns, NetworkBase):
    __tablename__ = "users"

    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    role: Mapped[Role] = relationship(lazy="joined")


class Token(TokenColumns, NetworkBase):
    """A session from login (``name`` empty), or a named API token for scripts and CI."""

    __tablename__ = "tokens"


class SetupToken(SetupTokenColumns, NetworkBase):
    __tablename__ = "setup_tokens"


class LoginFailures(NetworkBase):
    """Failed logins per account and address in the current window; past the allowance, refused until it ends."""

    __tablename__ = "login_failures"
    __table_args__ = (UniqueConstraint("email", "client_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    client_address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(NetworkBase):
    """Every mutating action: who, what, when, from where (append-only by convention: nothing updates it)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))


PENDING, APPROVED, DENIED, ENDED, EXPIRED = "pending", "approved", "denied", "ended", "expired"


class Association(NetworkBase):
    """A Node's association with this Network, from its join request on.

    Two credentials, each stored where it is *presented*, its hash where it is *accepted*: ``push_hash`` is
    the SHA-256 of the secret the Node presents to push its catalogue (the Network made it and returned it
    once); ``node_credential`` is the secret the Node made at join for this Network to present when it reads
    the Node's statistics (the Node keeps only its hash). Pushes are accepted only while ``state`` is approved.
    ``node_ca_pem``, when the Node gave it, pins the roots the Node's certificate must chain to when this Network
    reads its statistics (docs/network.md, "Private certificates"). ``requester_address`` is the key of the client
    address the join request came from (``core.web.address_key``; null for a join with an invitation, and for rows
    older than migration n0003): per-address limits count it. A request still pending after
    ``join_request_ttl_seconds`` becomes ``expired``.
    """

    __tablename__ = "associations"
    __table_args__ = (Index("ix_associations_requester_requested", "requester_address", "requested_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    node_name: Mapped[str] = mapped_column(String(64), index=True)
    node_url: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    push_hash: Mapped[str] = mapped_column(String(64), unique=True)
    node_credential: Mapped[str | None] = mapped_column(String(128))
    invitation_id: Mapped[int | None]
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(500), default="")
    last_push_at: Mapped[datetime | None]
    sync_started_at: Mapped[datetime | None]
    node_ca_pem: Mapped[str | None] = mapped_column(Text)
    requester_address: Mapped[str | None] = mapped_column(String(64))


class Invitation(NetworkBase):
    """A one-time code a Network administrator gives a Node's administrator: a join presenting it is approved."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class CatalogueEntry(NetworkBase):
    """One tensor's or dataset's metadata as its Node pushed it. Keyed by the association and the Node's own id:
    a Node writes only under its own association."""

    __tablename__ = "catalogue_entries"
    __table_args__ = (
        UniqueConstraint("association_id", "kind", "object_id"),
        Index("ix_catalogue_entries_association_seen", "association_id", "seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    association_id: Mapped[int] = mapped_column(ForeignKey("associations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    object_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(2000), default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    shape: Mapped[list[int] | None]
    dtype: Mapped[str | None] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime | None]
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueTag(NetworkBase):
    """An entry's tag. The key leads with the tag, so a tag's entries are read from the key's index alone."""

    __tablename__ = "catalogue_tags"
    __table_args__ = (Index("ix_catalogue_tags_entry_id", "entry_id"),)

    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalogue_entries.id", ondelete="CASCADE"), primary_key=True)


class CatalogueWord(NetworkBase):
    """A word of an entry's name or description (lower-case letters and digits), for search: a query's word finds
    the entries with a word it begins. The key leads with the word, so its entries are read from the index alone."""

    __tablename__ = "catalogue_words"
    __table_args__ = (Index("ix_catalogue_words_entry_id", "entry_id"),)

    word: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("catalogue_entries.id", ondelete="CASCADE"), primary_key=True)
