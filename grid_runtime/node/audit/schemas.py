"""API shapes for the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from grid_runtime.core.schemas import Out


class AuditOut(Out):
    id: int
    at: datetime
    actor_id: int | None
    actor_email: str | None
    action: str
    target_type: str
    target_id: str | None
    client_address: str | None
    details: dict[str, Any]
