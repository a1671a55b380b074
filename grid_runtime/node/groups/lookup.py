"""Finding a group by id or name. Models only, so the users service can use it without importing the groups
service (which imports the users service)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.errors import NotFound
from grid_runtime.core.schemas import as_id
from grid_runtime.node.groups.models import Group


def find(session: Session, ref: str | int) -> Group | None:
    """The group named by ``ref``: an id (digits) or a name."""
    if (group_id := as_id(ref)) is not None:
        return session.get(Group, group_id)
    return session.scalar(select(Group).where(Group.name == ref))


def resolve(session: Session, ref: str | int) -> Group:
    group = find(session, ref)
    if group is None:
        raise NotFound(f"no group {ref!r}")
    return group
