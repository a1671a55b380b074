from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.schemas import Page, PageParams
from grid_runtime.node.deps import DB, Actor, Requires, in_thread
from grid_runtime.node.groups import schemas, service
from grid_runtime.node.groups.models import Group
from grid_runtime.node.routing import NameRoute

router = APIRouter(prefix="/groups", tags=["groups"], route_class=NameRoute)
ManageGroups = Requires(Capability.manage_groups)


def _out(session: Session, groups: list[Group]) -> list[schemas.GroupOut]:
    counts = service.member_counts(session, [g.id for g in groups])
    return [
        schemas.GroupOut(id=g.id, name=g.name, description=g.description, created_at=g.created_at,
                         member_count=counts.get(g.id, 0))
        for g in groups
    ]


def _detail(session: Session, group: Group) -> schemas.GroupDetailOut:
    members = [schemas.MemberOut.model_validate(u) for u in service.members(session, group)]
    return schemas.GroupDetailOut(**_out(session, [group])[0].model_dump(), members=members)


@router.get("")
async def list_groups(
    session: DB,
    page: Annotated[PageParams, Query()],
    q: Annotated[str | None, Query(max_length=64, description="substring of the name")] = None,
    actor: Actor = Depends(ManageGroups),
) -> Page[schemas.GroupOut]:
    """List groups, optionally those whose name contains a substring."""

    def listing() -> Page[schemas.GroupOut]:
        rows, total = service.list_groups(session, q=q, limit=page.limit, offset=page.offset)
        return Page(items=[schemas.GroupOut(**row._mapping) for row in rows], total=total, limit=page.limit,
                    offset=page.offset)

    return await in_thread(session, listing)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_group(body: schemas.GroupCreateIn, session: DB, actor: Actor = Depends(ManageGroups)) -> schemas.GroupOut:
    """Create a group of users."""
    group = service.create_group(session, actor=actor, name=body.name, description=body.description)
    return _out(session, [group])[0]


@router.get("/{ref}")
def get_group(ref: str, session: DB, actor: Actor = Depends(ManageGroups)) -> schemas.GroupDetailOut:
    """One group by id or name, with its members."""
    return _detail(session, service.resolve(session, ref))


@router.patch("/{ref}")
def update_group(
    ref: str, body: schemas.GroupUpdateIn, session: DB, actor: Actor = Depends(ManageGroups)
) -> schemas.GroupOut:
    """Rename a group or change its description."""
    group = service.update_group(session, actor=actor, ref=ref, name=body.name, description=body.description)
    return _out(session, [group])[0]


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_group(ref: str, session: DB, actor: Actor = Depends(ManageGroups)) -> None:
    """Delete a group and its memberships (its users stay)."""
    service.delete_group(session, actor=actor, ref=ref)


@router.put("/{ref}/members/{user_ref}")
def add_member(
    ref: str, user_ref: str, session: DB, actor: Actor = Depends(ManageGroups)
) -> schemas.GroupDetailOut:
    """Add a user (by id or email) to a group; adding an existing member changes nothing."""
    return _detail(session, service.add_member(session, actor=actor, ref=ref, user_ref=user_ref))


@router.delete("/{ref}/members/{user_ref}")
def remove_member(
    ref: str, user_ref: str, session: DB, actor: Actor = Depends(ManageGroups)
) -> schemas.GroupDetailOut:
    """Remove a user (by id or email) from a group."""
    return _detail(session, service.remove_member(session, actor=actor, ref=ref, user_ref=user_ref))
