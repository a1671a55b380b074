"""Users: creation, edits, disabling, deletion, password resets, budgets and the Owner's transfer.

The anti-escalation rules (domain guide, "People and capabilities") are enforced here:
- nobody assigns a role whose capabilities they do not all hold, nor the Owner role (it is transferred);
- nobody changes their own role;
- the Owner cannot be deleted, disabled or demoted, nor edited by anyone else;
- a ``manage_users`` holder cannot modify, delete or reset a user whose role has capabilities they lack.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import DEFAULT_ROLE, Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.schemas import as_id
from grid_runtime.node.audit import service as audit
from grid_runtime.node.auth.models import Token
from grid_runtime.node.deps import Actor
from grid_runtime.node.groups import lookup as groups
from grid_runtime.node.groups.models import Group, GroupMember
from grid_runtime.node.roles import service as roles
from grid_runtime.node.roles.models import Role
from grid_runtime.node.users.models import User


def find(session: Session, ref: str | int) -> User | None:
    """The user named by ``ref``: an id (digits) or an email address (any case)."""
    if (user_id := as_id(ref)) is not None:
        return session.get(User, user_id)
    return session.scalar(select(User).where(User.email == str(ref).strip().lower()))


def resolve(session: Session, ref: str | int) -> User:
    user = find(session, ref)
    if user is None:
        raise NotFound(f"no user {ref!r}")
    return user


def is_owner(user: User) -> bool:
    return roles.is_owner_role(user.role)


_GROUP_NAMES = (select(GroupMember.__table__.c.user_id, Group.__table__.c.name)
                .join_from(GroupMember.__table__, Group.__table__)
                .where(GroupMember.__table__.c.user_id.in_(bindparam("ids", expanding=True)))
                .order_by(Group.__table__.c.name))
"""Built once, on the tables: every answer that shows a user runs it."""


def group_names(session: Session, user_ids: list[int]) -> dict[int, list[str]]:
    """Each user's group names, sorted; users in no group are absent."""
    names: dict[int, list[str]] = {}
    if not user_ids:
        return names
    for user_id, name in session.execute(_GROUP_NAMES, {"ids": user_ids}):
        names.setdefault(user_id, []).append(name)
    return names


def get_user(session: Session, *, actor: Actor, ref: str) -> User:
    """A user, for a ``manage_users`` holder; anyone may read their own account."""
    if not actor.can(Capability.manage_users):
        # Decided before looking the ref up, so that the answer does not reveal who exists.
        if as_id(ref) == actor.id or ref.strip().lower() == actor.user.email:
            return actor.user
        raise Forbidden("reading another user needs the capability manage_users",
                        details={"missing": [Capability.manage_users.value]})
    return resolve(session, ref)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_users(
    session: Session,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    q: str | None = None,
    group: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[User], int]:
    """Users matching every given filter, by id, and how many match in all."""
    conditions: list[ColumnElement[bool]] = []
    if role is not None:
        conditions.append(User.role_id == roles.resolve(session, role).id)
    if disabled is not None:
        conditions.append(User.disabled.is_(disabled))
    if q:
        pattern = _like(q)
        conditions.append(or_(User.email.ilike(pattern, escape="\\"), User.full_name.ilike(pattern, escape="\\")))
    if group is not None:
        members = select(GroupMember.user_id).where(GroupMember.group_id == groups.resolve(session, group).id)
        conditions.append(User.id.in_(members))
    total = session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
    users = session.scalars(select(User).where(*conditions).order_by(User.id).limit(limit).offset(offset))
    return list(users), total


def _role_for_user(session: Session, ref: str | int) -> Role:
    # A role named in a user's body is part of the input: unknown means invalid input, not a missing page.
    role = roles.find(session, ref)
    if role is None:
        raise InvalidInput(f"invalid request: role: no role {ref!r}", details=[
            {"field": "role", "problem": f"no role {ref!r}", "type": "unknown_role"}])
    return role


def _check_email_free(session: Session, email: str, *, except_id: int | None = None) -> None:
    taken = session.scalar(select(User.id).where(User.email == email))
    if taken is not None and taken != except_id:
        raise AlreadyExists(f"a user with email {email} already exists")


def _flush(session: Session, email: str) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request took the email between the check and the write
        raise AlreadyExists(f"a user with email {email} already exists") from exc


def check_may_manage(actor: Actor, target: User, *, doing: str) -> None:
    """The Owner is managed by nobody else; nobody manages a user more capable than themselves."""
    if target.id == actor.id:
        return
    if is_owner(target):
        raise Forbidden(f"the Owner cannot be {doing} by anyone else")
    missing = roles.missing_capabilities(actor, target.role.capabilities)
    if missing:
        raise Forbidden(
            f"{target.email} has the role {target.role.name!r} with capabilities you do not hold "
            f"({', '.join(missing)}); you cannot manage them",
            details={"missing": missing},
        )


def create_user(
    session: Session,
    *,
    actor: Actor,
    email: str,
    password_hash: str,
    full_name: str = "",
    role: str | int | None = None,
    budget_epsilon: float | None = None,
) -> User:
    """Create a user with a role the actor may grant; setting a budget also needs ``manage_budgets``.

    ``password_hash``: the caller hashes the password before the transaction (argon2 never runs in one)."""
    role_row = _role_for_user(session, role if role is not None else DEFAULT_ROLE)
    roles.check_may_grant(actor, role_row)
    if budget_epsilon is not None and not actor.can(Capability.manage_budgets):
        raise Forbidden("setting a budget needs the capability manage_budgets",
                        details={"missing": [Capability.manage_budgets.value]})
    _check_email_free(session, email)
    user = User(email=email, full_name=full_name, password_hash=password_hash, role=role_row,
                budget_epsilon=budget_epsilon or 0.0)
    session.add(user)
    _flush(session, email)
    audit.record(session, actor=actor, action="user.created", target_type="user", target_id=user.id,
                 details={"email": email, "role": role_row.name, "budget_epsilon": user.budget_epsilon})
    return user


def _revoke_tokens(session: Session, user: User) -> None:
    """Every token of the user, sessions and API tokens: a disabled account or a reset password ends them."""
    session.execute(update(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))


def update_user(
    session: Session,
    *,
    actor: Actor,
    ref: str,
    email: str | None = None,
    full_name: str | None = None,
    role: str | int | None = None,
    disabled: bool | None = None,
) -> User:
    """Edit a user's email, name, role or disabled flag. Disabling also ends their sessions."""
    user = resolve(session, ref)
    check_may_manage(actor, user, doing="edited")
    changes: dict[str, Any] = {}
    new_role: Role | None = None
    if role is not None:
        new_role = _role_for_user(session, role)
        if new_role.id != user.role_id:
            if user.id == actor.id:
                raise Forbidden("nobody can change their own role")
            roles.check_may_grant(actor, new_role)
            changes["role"] = {"from": user.role.name, "to": new_role.name}
    if disabled is not None and disabled != user.disabled:
        if disabled and is_owner(user):
            raise Forbidden("the Owner cannot be disabled")
        if disabled and user.id == actor.id:
            raise Conflict("you cannot disable your own account")
        changes["disabled"] = {"from": user.disabled, "to": disabled}
    if email is not None and email != user.email:
        _check_email_free(session, email, except_id=user.id)
        changes["email"] = {"from": user.email, "to": email}
    if full_name is not None and full_name != user.full_name:
        changes["full_name"] = {"from": user.full_name, "to": full_name}
    if not changes:
        return user
    # Every check has passed: only now is anything changed.
    if "role" in changes and new_role is not None:
        user.role = new_role
    if "disabled" in changes:
        user.disabled = changes["disabled"]["to"]
        if user.disabled:
            _revoke_tokens(session, user)
    if "email" in changes:
        user.email = changes["email"]["to"]
    if "full_name" in changes:
        user.full_name = changes["full_name"]["to"]
    _flush(session, user.email)
    audit.record(session, actor=actor, action="user.updated", target_type="user", target_id=user.id,
                 details={"email": user.email, "changes": changes})
    return user


def delete_user(session: Session, *, actor: Actor, ref: str) -> None:
    """Delete a user with their tokens and group memberships (the audit log keeps their history)."""
    user = resolve(session, ref)
    if user.id == actor.id:
        raise Conflict("you cannot delete your own account")
    if is_owner(user):
        raise Forbidden("the Owner cannot be deleted; transfer ownership first")
    check_may_manage(actor, user, doing="deleted")
    audit.record(session, actor=actor, action="user.deleted", target_type="user", target_id=user.id,
                 details={"email": user.email, "role": user.role.name})
    # The foreign keys cascade too; deleting explicitly keeps this correct whatever the backend enforces.
    session.execute(delete(Token).where(Token.user_id == user.id))
    session.execute(delete(GroupMember).where(GroupMember.user_id == user.id))
    session.delete(user)
    session.flush()


def check_may_reset(session: Session, *, actor: Actor, ref: str) -> User:
    """Refuse a reset before any password is hashed for it."""
    user = resolve(session, ref)
    if user.id == actor.id:
        raise Forbidden("change your own password with PUT /users/me/password and your current password")
    check_may_manage(actor, user, doing="reset")
    return user


def reset_password(session: Session, *, actor: Actor, ref: str, new_password_hash: str) -> None:
    """Set another user's password (hashed by the caller); every token of theirs is revoked."""
    user = check_may_reset(session, actor=actor, ref=ref)
    user.password_hash = new_password_hash
    _revoke_tokens(session, user)
    audit.record(session, actor=actor, action="user.password_reset", target_type="user", target_id=user.id,
                 details={"email": user.email})


def set_budget(session: Session, *, actor: Actor, ref: str, epsilon: float) -> User:
    """Set a user's privacy budget ε."""
    user = resolve(session, ref)
    if is_owner(user) and user.id != actor.id:
        raise Forbidden("the Owner cannot be edited by anyone else")
    before = user.budget_epsilon
    if epsilon != before:
        user.budget_epsilon = epsilon
        audit.record(session, actor=actor, action="user.budget_set", target_type="user", target_id=user.id,
                     details={"email": user.email, "from": before, "to": epsilon})
    return user


def transfer_ownership(session: Session, *, actor: Actor, ref: str) -> User:
    """Make another user the Owner; the current Owner becomes an Administrator."""
    if not is_owner(actor.user):
        raise Forbidden("only the Owner can transfer ownership")
    user = resolve(session, ref)
    if user.id == actor.id:
        raise Conflict("you are already the Owner")
    if user.disabled:
        raise Conflict(f"{user.email} is disabled; enable them before making them the Owner")
    owner_role = actor.user.role
    administrator = roles.resolve(session, "Administrator")
    actor.user.role = administrator
    user.role = owner_role
    session.flush()
    audit.record(session, actor=actor, action="user.ownership_transferred", target_type="user",
                 target_id=user.id, details={"from": actor.user.email, "to": user.email})
    return user
