from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.schemas import Page, PageParams
from grid_runtime.node.audit import schemas, service
from grid_runtime.node.deps import DB, Actor, Requires

router = APIRouter(prefix="/audit", tags=["audit"])


def _utc(value: datetime | None) -> datetime | None:
    # A time given without an offset is read as UTC, the time the log is kept in.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get("")
def list_events(
    session: DB,
    page: Annotated[PageParams, Query()],
    actor_ref: Annotated[str | None, Query(alias="actor", max_length=254, description="user id or email")] = None,
    action: Annotated[str | None, Query(max_length=64, description="exact, or a prefix ending in *")] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive; UTC if no offset)")] = None,
    until: Annotated[datetime | None, Query(description="before this time (exclusive; UTC if no offset)")] = None,
    actor: Actor = Depends(Requires(Capability.view_statistics)),
) -> Page[schemas.AuditOut]:
    """The audit log, newest first: who did what, to which target, when and from where."""
    events, total = service.list_events(
        session, actor=actor_ref, action=action, target_type=target_type, target_id=target_id,
        since=_utc(since), until=_utc(until), limit=page.limit, offset=page.offset,
    )
    return Page(items=[schemas.AuditOut.model_validate(e) for e in events], total=total, limit=page.limit,
                offset=page.offset)
