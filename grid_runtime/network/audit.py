"""The Network's audit log: every mutating action, who, what, when, from where."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from grid_runtime.network.models import AuditEvent


def record(session: Session, *, actor_id: int | None, action: str, target_type: str, target_id: int | None,
           details: dict[str, Any] | None = None, client_address: str | None = None) -> None:
    session.add(AuditEvent(actor_id=actor_id, action=action, target_type=target_type, target_id=target_id,
                           details=details or {}, client_address=client_address))
