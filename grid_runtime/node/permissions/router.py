from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.schemas import MAX_ID, Id, Page
from grid_runtime.node.deps import DB, Actor, Requires
from grid_runtime.node.permissions import schemas, service
from grid_runtime.node.permissions.models import Grant

router = APIRouter(tags=["permissions"])


def _out(session: Session, grants: Sequence[Grant]) -> list[schemas.GrantOut]:
    names = service.subject_names(session, grants)
    return [
        schemas.GrantOut.model_validate(g).model_copy(update={"subject_name": names.get((g.subject_type,
                                                                                          g.subject_id))})
        for g in grants
    ]


@router.post("/permissions", status_code=status.HTTP_201_CREATED)
def grant(
    body: schemas.GrantIn, session: DB, actor: Actor = Depends(Requires(Capability.manage_permissions))
) -> schemas.GrantOut:
    """Grant a level or a deny to a user or group on a tensor or dataset (replaces an earlier level)."""
    row = service.grant(session, actor=actor, subject_type=body.subject_type, subject=body.subject,
                        target_type=body.target_type, target_id=body.target_id, level=body.level)
    return _out(session, [row])[0]


@router.get("/permissions")
def list_grants(
    session: DB,
    target_type: Annotated[schemas.TargetType | None, Query()] = None,
    target_id: Annotated[Id | None, Query()] = None,
    subject_type: Annotated[schemas.SubjectType | None, Query()] = None,
    subject: Annotated[str | None, Query(max_length=254)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[schemas.GrantOut]:
    """List grants. Without manage_permissions you see only the grants that apply to you."""
    rows, total = service.list_grants(session, actor=actor, target_type=target_type, target_id=target_id,
                                      subject_type=subject_type, subject=subject, limit=limit, offset=offset)
    return Page(items=_out(session, rows), total=total, limit=limit, offset=offset)


@router.get("/permissions/explain")
def explain(
    session: DB,
    target_type: Annotated[schemas.TargetType, Query()],
    target_id: Annotated[Id, Query()],
    user: Annotated[str | None, Query(max_length=254, description="id or email; yourself if omitted")] = None,
    actor: Actor = Depends(Requires()),
) -> schemas.ExplainOut:
    """Explain a user's effective level on a tensor or dataset by naming the rule and grant that decided."""
    subject, decision = service.explain(session, actor=actor, user=user, target_type=target_type,
                                        target_id=target_id)
    return schemas.ExplainOut(user_id=subject.id, target_type=target_type, target_id=target_id,
                              level=decision.level, rule=decision.rule, grant_id=decision.grant_id,
                              explanation=decision.explanation)


@router.delete("/permissions/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke(
    grant_id: Id, session: DB, actor: Actor = Depends(Requires(Capability.manage_permissions))
) -> None:
    """Revoke a grant; the subject falls back to the next rule in the resolution order."""
    service.revoke(session, actor=actor, grant_id=grant_id)
