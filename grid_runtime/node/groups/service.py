"""Groups of users and their membership. Grants on data may name a group (see the permissions domain)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Row, bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import AlreadyExists, Forbidden, NotFound
from grid_runtime.node.audit import service as audit
from grid_runtime.node.deps import Actor
from grid_runtime.node.groups import lookup
from grid_runtime.node.groups.models import Group, GroupMember
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.users import service as users
from grid_runtime.node.users.models import User

find = lookup.find
resolve = lookup.resolve


def carries_grants(session: Session, group: Group) -> bool:
    """Whether any grant names this group: then its membership decides who may read what."""
    return session.scalar(select(Grant.id).where(Grant.group_id == group.id).limit(1)) is not None


def check_may_change_membership(session: Session, actor: Actor, group: Group, *, doing: str) -> None:
    """Changing who belongs to a group that carries grants changes data access: that is permission
    management (``manage_permissions``), not only group management. Otherwise a ``manage_groups`` holder
    could add themselves to a group with grants and read what it may."""
    if not actor.can(Capability.manage_permissions) and carries_grants(session, group):
        raise Forbidden(
            f"the group {group.name!r} carries grants on data, so {doing} it changes who may read what; "
            "that needs the capability manage_permissions",
            details={"missing": [Capability.manage_permissions.value]},
        )


def member_counts(session: Session, group_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(GroupMember.group_id, func.count()).where(GroupMember.group_id.in_(group_ids))
        .group_by(GroupMember.group_id)
    )
    return {group_id: count for group_id, count in rows}


def members(session: Session, group: Group) -> list[User]:
    query = select(User).join(GroupMember, GroupMember.user_id == User.id).where(GroupMember.group_id == group.id)
    return list(session.scalars(query.order_by(User.id)))


_GROUPS, _MEMBERS = Group.__table__, GroupMember.__table__
_LISTED = select(_GROUPS.c.id, _GROUPS.c.name, _GROUPS.c.description, _GROUPS.c.created_at,
                 select(func.count()).where(_MEMBERS.c.group_id == _GROUPS.c.id).correlate(_GROUPS)
                 .scalar_subquery().label("member_count")).order_by(_GROUPS.c.name)
_COUNT_ALL = select(func.count()).select_from(_GROUPS)
_PAGE_ALL = _LISTED.limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))
"""The plain listing, built once (the others add a filter on the name)."""


def list_groups(
    session: Session, *, q: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Row[Any]], int]:
    """Groups whose name contains ``q`` (any case), by name, and how many match in all: rows of ``id``,
    ``name``, ``description``, ``created_at`` and ``member_count``, read in one query (no ORM objects)."""
    if not q:
        total = session.scalar(_COUNT_ALL) or 0
        if offset >= total:
            return [], total
        return list(session.execute(_PAGE_ALL, {"limit": limit, "offset": offset})), total
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches = _GROUPS.c.name.ilike(f"%{escaped}%", escape="\\")
    total = session.scalar(select(func.count()).select_from(_GROUPS).where(matches)) or 0
    return list(session.execute(_LISTED.where(matches).limit(limit).offset(offset))), total


def _check_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    taken = session.scalar(select(Group.id).where(Group.name == name))
    if taken is not None and taken != except_id:
        raise AlreadyExists(f"a group named {name!r} already exists")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the name between the check and the write
        raise AlreadyExists(f"a group named {name!r} already exists") from exc


def create_group(session: Session, *, actor: Actor, name: str, description: str = "") -> Group:
    _check_name_free(session, name)
    group = Group(name=name, description=description)
    session.add(group)
    _flush(session, name)
    audit.record(session, actor=actor, action="group.created", target_type="group", target_id=group.id,
                 details={"name": name})
    return group


def update_group(
    session: Session, *, actor: Actor, ref: str, name: str | None = None, description: str | None = None
) -> Group:
    group = resolve(session, ref)
    changes: dict[str, dict[str, str]] = {}
    if name is not None and name != group.name:
        _check_name_free(session, name, except_id=group.id)
        changes["name"] = {"from": group.name, "to": name}
        group.name = name
    if description is not None and description != group.description:
        changes["description"] = {"from": group.description, "to": description}
        group.description = description
    if changes:
        _flush(session, group.name)
        audit.record(session, actor=actor, action="group.updated", target_type="group", target_id=group.id,
                     details={"name": group.name, "changes": changes})
    return group


def delete_group(session: Session, *, actor: Actor, ref: str) -> None:
    """Delete a group; its memberships go with it."""
    group = resolve(session, ref)
    check_may_change_membership(session, actor, group, doing="deleting")
    audit.record(session, actor=actor, action="group.deleted", target_type="group", target_id=group.id,
                 details={"name": group.name, "members": [u.email for u in members(session, group)]})
    session.execute(delete(GroupMember).where(GroupMember.group_id == group.id))
    session.delete(group)
    session.flush()


def add_member(session: Session, *, actor: Actor, ref: str, user_ref: str) -> Group:
    """Add a user to a group. Adding a member again changes nothing."""
    group = resolve(session, ref)
    user = users.resolve(session, user_ref)
    if session.get(GroupMember, (group.id, user.id)) is None:
        check_may_change_membership(session, actor, group, doing="adding members to")
        session.add(GroupMember(group_id=group.id, user_id=user.id))
        session.flush()
        audit.record(session, actor=actor, action="group.member_added", target_type="group", target_id=group.id,
                     details={"name": group.name, "user_id": user.id, "email": user.email})
    return group


def remove_member(session: Session, *, actor: Actor, ref: str, user_ref: str) -> Group:
    group = resolve(session, ref)
    user = users.resolve(session, user_ref)
    membership = session.get(GroupMember, (group.id, user.id))
    if membership is None:
        raise NotFound(f"{user.email} is not a member of the group {group.name!r}")
    check_may_change_membership(session, actor, group, doing="removing members from")
    session.delete(membership)
    session.flush()
    audit.record(session, actor=actor, action="group.member_removed", target_type="group", target_id=group.id,
                 details={"name": group.name, "user_id": user.id, "email": user.email})
    return group
