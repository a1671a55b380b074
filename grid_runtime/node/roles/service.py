"""Roles: preset and custom sets of capabilities, with the anti-escalation rules for granting them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import OWNER_ROLE, Capability
from grid_runtime.core.errors import AlreadyExists, Conflict, Forbidden, NotFound
from grid_runtime.core.schemas import as_id
from grid_runtime.node.audit import service as audit
from grid_runtime.node.deps import Actor
from grid_runtime.node.roles.models import Role
from grid_runtime.node.users.models import User


def find(session: Session, ref: str | int) -> Role | None:
    """The role named by ``ref``: an id (an int, or a string of digits) or a name."""
    if (role_id := as_id(ref)) is not None:
        return session.get(Role, role_id)
    return session.scalar(select(Role).where(Role.name == ref))


def resolve(session: Session, ref: str | int) -> Role:
    role = find(session, ref)
    if role is None:
        raise NotFound(f"no role {ref!r}")
    return role


def is_owner_role(role: Role) -> bool:
    return role.preset and role.name == OWNER_ROLE


def missing_capabilities(actor: Actor, capabilities: Iterable[str]) -> list[str]:
    """The capabilities in ``capabilities`` that the actor does not hold, sorted."""
    return sorted(set(capabilities) - set(actor.capabilities))


def check_may_grant(actor: Actor, role: Role) -> None:
    """Anti-escalation: nobody assigns the Owner role, nor a role whose capabilities they do not all hold."""
    if is_owner_role(role):
        raise Forbidden("the Owner role cannot be assigned; the Owner transfers ownership instead")
    missing = missing_capabilities(actor, role.capabilities)
    if missing:
        raise Forbidden(
            f"you cannot assign the role {role.name!r}: it has capabilities you do not hold "
            f"({', '.join(missing)})",
            details={"missing": missing},
        )


def user_counts(session: Session, role_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(User.role_id, func.count()).where(User.role_id.in_(role_ids)).group_by(User.role_id)
    )
    return {role_id: count for role_id, count in rows}


def list_roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.id)))


def _check_name_free(session: Session, name: str, *, except_id: int | None = None) -> None:
    taken = session.scalar(select(Role.id).where(Role.name == name))
    if taken is not None and taken != except_id:
        raise AlreadyExists(f"a role named {name!r} already exists")


def _check_capabilities_held(actor: Actor, capabilities: Iterable[str], *, doing: str) -> None:
    missing = missing_capabilities(actor, capabilities)
    if missing:
        raise Forbidden(
            f"you cannot {doing} a role with capabilities you do not hold ({', '.join(missing)})",
            details={"missing": missing},
        )


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the name between the check and the insert
        raise AlreadyExists(f"a role named {name!r} already exists") from exc


def create_role(
    session: Session, *, actor: Actor, name: str, description: str, capabilities: list[Capability]
) -> Role:
    """Create a custom role. The actor must hold every capability they put in it."""
    caps = sorted(str(c) for c in set(capabilities))
    _check_capabilities_held(actor, caps, doing="create")
    _check_name_free(session, name)
    role = Role(name=name, description=description, capabilities=caps, preset=False)
    session.add(role)
    _flush(session, name)
    audit.record(session, actor=actor, action="role.created", target_type="role", target_id=role.id,
                 details={"name": name, "capabilities": caps})
    return role


def update_role(
    session: Session,
    *,
    actor: Actor,
    ref: str,
    name: str | None = None,
    description: str | None = None,
    capabilities: list[Capability] | None = None,
) -> Role:
    """Edit a custom role. The actor must hold every capability the role has now and will have after."""
    role = resolve(session, ref)
    if role.preset:
        raise Forbidden(f"{role.name!r} is a preset role and cannot be edited")
    _check_capabilities_held(actor, role.capabilities, doing="edit")
    changes: dict[str, object] = {}
    if capabilities is not None:
        caps = sorted(str(c) for c in set(capabilities))
        _check_capabilities_held(actor, caps, doing="grant")
        if caps != sorted(role.capabilities):
            changes["capabilities"] = {"from": sorted(role.capabilities), "to": caps}
            role.capabilities = caps
    if name is not None and name != role.name:
        _check_name_free(session, name, except_id=role.id)
        changes["name"] = {"from": role.name, "to": name}
        role.name = name
    if description is not None and description != role.description:
        changes["description"] = {"from": role.description, "to": description}
        role.description = description
    if changes:
        _flush(session, role.name)
        audit.record(session, actor=actor, action="role.updated", target_type="role", target_id=role.id,
                     details={"name": role.name, "changes": changes})
    return role


def delete_role(session: Session, *, actor: Actor, ref: str) -> None:
    """Delete a custom role that no user has."""
    role = resolve(session, ref)
    if role.preset:
        raise Forbidden(f"{role.name!r} is a preset role and cannot be deleted")
    in_use = user_counts(session, [role.id]).get(role.id, 0)
    if in_use:
        raise Conflict(f"the role {role.name!r} is held by {in_use} user(s); give them another role first",
                       details={"user_count": in_use})
    audit.record(session, actor=actor, action="role.deleted", target_type="role", target_id=role.id,
                 details={"name": role.name, "capabilities": sorted(role.capabilities)})
    session.delete(role)
