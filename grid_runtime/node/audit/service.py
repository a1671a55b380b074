"""The audit writer: every mutating action records who, what, on which target, when and from where."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

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
