"""The audit writer: every mutating action records who, what, on which target, when and from where."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from grid_runtime.core.schemas import as_id
from grid_runtime.node.audit.models import AuditEvent

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    target_type: str,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    client_address: str | None = None,
) -> AuditEvent:
    """Add an audit event to the caller's transaction, so it commits or rolls back with the change."""
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_email=actor.user.email if actor else None,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        client_address=actor.client_address if actor else client_address,
        details=details or {},
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Events matching every given filter, newest first, and how many match in all.

    ``actor`` is a user id (digits) or email, matched against what was recorded, so it still finds the
    events of a deleted user. ``action`` ending in ``*`` matches a prefix (``user.*``). ``since`` is
    inclusive, ``until`` exclusive.
    """
    conditions: list[ColumnElement[bool]] = []
    if actor is not None:
        conditions.append(
            AuditEvent.actor_id == actor_id if (actor_id := as_id(actor)) is not None
            else AuditEvent.actor_email == actor.strip().lower()
        )
    if action is not None:
        if action.endswith("*"):
            escaped = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(AuditEvent.action.like(f"{escaped}%", escape="\\"))
        else:
            conditions.append(AuditEvent.action == action)
    if target_type is not None:
        conditions.append(AuditEvent.target_type == target_type)
    if target_id is not None:
        conditions.append(AuditEvent.target_id == target_id)
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    if until is not None:
        conditions.append(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
    query = select(AuditEvent).where(*conditions).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset))), total
