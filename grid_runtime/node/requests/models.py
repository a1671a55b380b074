from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from grid_runtime.core.database import Base, utcnow
from grid_runtime.node.users.models import User

_STATES = "'pending', 'approved', 'denied', 'withdrawn', 'expired', 'auto_approved', 'auto_denied'"


class Request(Base):
    """A request of any kind. Kind-specific data (the level asked for, a cost, a fingerprint) is in
    ``payload``; the state follows ``requests.states`` and every transition is a ``RequestEvent``."""

    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(f"state IN ({_STATES})", name="state"),
        Index("ix_requests_target", "target_type", "target_id"),
        Index("ix_requests_requester_state", "requester_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # states.RequestKind
    state: Mapped[str] = mapped_column(String(16), index=True)  # states.RequestState
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What the request is about; no FK because kinds point at different tables (tensor, dataset, result).
    target_type: Mapped[str | None] = mapped_column(String(16))
    target_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(String(2000))

    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined", innerjoin=True)
    events: Mapped[list[RequestEvent]] = relationship(
        order_by="RequestEvent.id", cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )

    @property
    def requester_email(self) -> str:
        return self.requester.email


class RequestEvent(Base):
    """One transition of a request: creation (``from_state`` NULL), decisions, withdrawal, expiry."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(String(2000))
    at: Mapped[datetime] = mapped_column(default=utcnow)
