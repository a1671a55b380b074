"""The Network's own people: preset roles, the one-time setup of the Owner, login, users and roles.

As on the Node, and with the same core (``core.accounts``: the preset roles, the setup token and the Owner's
creation, sessions and API tokens; argon2id passwords, opaque tokens stored as SHA-256, capabilities as data):
argon2 runs between transactions, never inside one. Login failures are counted per account and address.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from grid_runtime.core.accounts import service as accounts
from grid_runtime.core.accounts.service import LOGIN_FAILED, SETUP_TOKEN_FILE  # noqa: F401  (re-exported)
from grid_runtime.core.capabilities import (
    NETWORK_DEFAULT_ROLE,
    NETWORK_PRESET_DESCRIPTIONS,
    NETWORK_PRESET_ROLES,
    OWNER_ROLE,
    NetworkCapability,
)
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import AlreadyExists, Forbidden, NotFound, RateLimited
from grid_runtime.core.schemas import as_id
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network import audit
from grid_runtime.network.deps import Actor
from grid_runtime.network.models import LoginFailures, Role, SetupToken, Token, User


def prepare(session: Session, settings: NetworkSettings) -> None:
    """What the Network does at each start, after migrations: its preset roles, and before the Owner exists a
    one-time setup token in ``state_dir/setup-token`` (``core.accounts``)."""
    accounts.seed_preset_roles(session, roles=Role, presets=NETWORK_PRESET_ROLES,
                               descriptions=NETWORK_PRESET_DESCRIPTIONS)
    session.flush()
    has_owner = accounts.owner_exists(session, users=User, roles=Role)
    accounts.issue_setup_token(session, settings.state_dir, setup_tokens=SetupToken, has_owner=has_owner,
                               prefix="gnsetup")


def complete_setup(session: Session, *, setup_token: str, email: str, password_hash: str, full_name: str,
                   client_address: str) -> User:
    """Create the Owner with the one-time token (``core.accounts.create_owner``)."""
    owner = accounts.create_owner(session, setup_token=setup_token, setup_tokens=SetupToken, users=User, roles=Role,
                                  service="Network", email=email, full_name=full_name, password_hash=password_hash)
    audit.record(session, actor_id=None, action="network.setup", target_type="user", target_id=owner.id,
                 details={"email": email}, client_address=client_address)
    return owner


# --- login -------------------------------------------------------------------------------------------------

def _failures(session: Session, email: str, address: str) -> LoginFailures:
    row = session.scalar(select(LoginFailures).where(LoginFailures.email == email,
                                                     LoginFailures.client_address == address))
    if row is None:
        row = LoginFailures(email=email, client_address=address, failures=0, window_started_at=utcnow())
        session.add(row)
    return row


def check_login_allowed(session: Session, *, email: str, client_address: str, settings: NetworkSettings) -> str | None:
    """Refuse (429) while this account has had ``login_max_failures`` from this address in the window; else
    the account's password hash to check (None: no such account)."""
    row = session.scalar(select(LoginFailures).where(LoginFailures.email == email,
                                                     LoginFailures.client_address == client_address))
    if row is not None and row.failures >= settings.login_max_failures:
        ends = row.window_started_at + timedelta(seconds=settings.login_window_seconds)
        wait = int((ends - utcnow()).total_seconds()) + 1
        if wait > 0:
            raise RateLimited(f"too many failed logins; try again in {wait} seconds", details={"retry_after": wait})
    user = session.scalar(select(User).where(User.email == email))
    return None if user is None or user.disabled else user.password_hash


def finish_login(session: Session, *, email: str, seen_hash: str | None, password_ok: bool, client_address: str,
                 settings: NetworkSettings) -> tuple[Token, str] | None:
    user = session.scalar(select(User).where(User.email == email))
    if not password_ok or user is None or user.disabled or user.password_hash != seen_hash:
        row = _failures(session, email, client_address)
        if utcnow() - row.window_started_at > timedelta(seconds=settings.login_window_seconds):
            row.failures, row.window_started_at = 0, utcnow()
        row.failures += 1
        audit.record(session, actor_id=None, action="auth.login_failed", target_type="user",
                     target_id=user.id if user else None, details={"email": email}, client_address=client_address)
        return None
    session.execute(delete(LoginFailures).where(LoginFailures.email == email,
                                                LoginFailures.client_address == client_address))
    token, secret = accounts.open_session(session, Token, prefix="gnsess", user_id=user.id,
                                          ttl_seconds=settings.session_ttl_seconds)
    audit.record(session, actor_id=user.id, action="auth.login", target_type="user", target_id=user.id,
                 client_address=client_address)
    return token, secret


def logout(session: Session, *, actor: Actor) -> None:
    accounts.end_session(session, Token, actor.token_id)


API_TOKENS = Token.name.is_not(None)
"""A named token is an API token; a session has no name."""


def create_api_token(session: Session, *, actor: Actor, name: str, expires_in_days: int | None) -> tuple[Token, str]:
    token, secret = accounts.create_api_token(session, Token, api=API_TOKENS, prefix="gnapi", user_id=actor.id,
                                              name=name, expires_in_days=expires_in_days)
    audit.record(session, actor_id=actor.id, action="token.created", target_type="token", target_id=token.id,
                 details={"name": name}, client_address=actor.client_address)
    return token, secret


def list_api_tokens(session: Session, *, actor: Actor) -> list[Token]:
    return accounts.list_api_tokens(session, Token, api=API_TOKENS, user_id=actor.id)


def revoke_api_token(session: Session, *, actor: Actor, ref: str) -> Token:
    """Revoke one of the caller's own API tokens, named by id (digits) or else by name."""
    token_id = as_id(ref)
    match = (Token.id == token_id) if token_id is not None else (Token.name == ref)
    token = accounts.revoke_api_token(session, Token, api=API_TOKENS, user_id=actor.id, ref=ref, match=match)
    audit.record(session, actor_id=actor.id, action="token.revoked", target_type="token", target_id=token.id,
                 details={"name": token.name}, client_address=actor.client_address)
    return token


# --- roles and users ---------------------------------------------------------------------------------------

def resolve_role(session: Session, ref: str) -> Role:
    role_id = as_id(ref)
    role = session.get(Role, role_id) if role_id is not None else session.scalar(select(Role).where(Role.name == ref))
    if role is None:
        raise NotFound(f"no role {ref!r}")
    return role


def list_roles(session: Session) -> list[Role]:
    return list(session.scalars(select(Role).order_by(Role.id)))


def create_role(session: Session, *, actor: Actor, name: str, description: str,
                capabilities: list[NetworkCapability]) -> Role:
    beyond = sorted(set(capabilities) - actor.capabilities)
    if beyond:
        raise Forbidden(f"you cannot give capabilities you do not hold: {', '.join(beyond)}")
    if session.scalar(select(Role.id).where(Role.name == name)) or as_id(name) is not None:
        raise AlreadyExists(f"a role named {name!r} already exists (or the name is a number)")
    role = Role(name=name, description=description, capabilities=sorted(capabilities))
    session.add(role)
    session.flush()
    audit.record(session, actor_id=actor.id, action="role.created", target_type="role", target_id=role.id,
                 details={"name": name, "capabilities": role.capabilities}, client_address=actor.client_address)
    return role


def _check_may_give(actor: Actor, role: Role) -> None:
    beyond = sorted(set(role.capabilities) - actor.capabilities)
    if beyond or role.name == OWNER_ROLE:
        raise Forbidden(f"you cannot give the role {role.name!r}: it holds what you do not, or it is the Owner's")


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def create_user(session: Session, *, actor: Actor, email: str, password_hash: str, full_name: str,
                role_ref: str | None) -> User:
    role = resolve_role(session, role_ref or NETWORK_DEFAULT_ROLE)
    _check_may_give(actor, role)
    if session.scalar(select(User.id).where(User.email == email)):
        raise AlreadyExists(f"a user with email {email} already exists")
    user = User(email=email, full_name=full_name, password_hash=password_hash, role=role)
    session.add(user)
    session.flush()
    audit.record(session, actor_id=actor.id, action="user.created", target_type="user", target_id=user.id,
                 details={"email": email, "role": role.name}, client_address=actor.client_address)
    return user


def update_user(session: Session, *, actor: Actor, user_id: int, role_ref: str | None,
                disabled: bool | None) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    if user.id == actor.id:
        raise Forbidden("nobody can change their own role or disable their own account")
    if user.role.name == OWNER_ROLE:
        raise Forbidden("the Owner cannot be demoted or disabled")
    _check_may_give(actor, user.role)
    if role_ref is not None:
        role = resolve_role(session, role_ref)
        _check_may_give(actor, role)
        user.role = role
    if disabled is not None:
        user.disabled = disabled
        if disabled:
            for token in session.scalars(select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))):
                token.revoked_at = utcnow()
    audit.record(session, actor_id=actor.id, action="user.updated", target_type="user", target_id=user.id,
                 details={"role": user.role.name, "disabled": user.disabled}, client_address=actor.client_address)
    return user
