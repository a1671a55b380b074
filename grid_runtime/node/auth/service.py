"""Setup of the Owner, login with rate limiting, sessions, named API tokens and password changes.

Argon2 (hashing and checking passwords) never runs inside a transaction: the routes do it between short
transactions (``begin_login`` / ``finish_login``), so a login never holds the writer while it hashes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from grid_runtime.core.accounts import service as accounts
from grid_runtime.core.accounts.service import LOGIN_FAILED, remove_setup_token_file  # noqa: F401  (re-exported)
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Forbidden, NotFound, RateLimited
from grid_runtime.core.schemas import as_id
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.audit import service as audit
from grid_runtime.node.auth.models import API, SESSION, LoginThrottle, SetupToken, Token
from grid_runtime.node.deps import Actor
from grid_runtime.node.roles.models import Role
from grid_runtime.node.users.models import User


def issue_setup_token(session: Session, state_dir: Path) -> None:
    """Before the Owner exists, a one-time setup token in force and in the state dir (``core.accounts``)."""
    has_owner = accounts.owner_exists(session, users=User, roles=Role)
    accounts.issue_setup_token(session, state_dir, setup_tokens=SetupToken, has_owner=has_owner, prefix="gsetup")


def complete_setup(
    session: Session, *, setup_token: str, email: str, password_hash: str, full_name: str, state_dir: Path,
    client_address: str,
) -> User:
    """Create the Owner with the one-time token (``core.accounts.create_owner``)."""
    owner = accounts.create_owner(session, setup_token=setup_token, setup_tokens=SetupToken, users=User, roles=Role,
                                  service="Node", email=email, full_name=full_name, password_hash=password_hash)
    audit.record(session, actor=None, action="node.setup", target_type="user", target_id=owner.id,
                 details={"email": email}, client_address=client_address)
    return owner


# --- login ----------------------------------------------------------------------------------------------

ANY_ACCOUNT = ""
"""The throttle row of an address for every account (``email`` empty): it allows 4× an account's attempts."""


@dataclass(frozen=True)
class LoginAttempt:
    """What the first, short transaction of a login hands to the password check (outside any transaction)."""

    user_id: int | None
    password_hash: str | None
    disabled: bool


def _throttle_row(session: Session, email: str, client_address: str) -> LoginThrottle:
    """The row for this key, created if missing, locked for the rest of the transaction.

    ``INSERT .. ON CONFLICT DO NOTHING`` then ``SELECT .. FOR UPDATE``: concurrent first attempts create one
    row, and on PostgreSQL every attempt on the key waits for the row lock (SQLite writers are serialized)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(email=email, client_address=client_address, attempts=0,
                                                 updated_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["email", "client_address"]))
    row = session.scalar(select(LoginThrottle).where(LoginThrottle.email == email,
                                                     LoginThrottle.client_address == client_address)
                         .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


def _count_attempt(row: LoginThrottle, *, allowance: int, settings: NodeSettings) -> None:
    """Count one attempt on ``row``, or refuse it (429) while the row's back-off lasts."""
    now = utcnow()
    if row.blocked_until is not None and row.blocked_until > now:
        wait = max(1, math.ceil((row.blocked_until - now).total_seconds()))
        raise RateLimited(f"too many failed logins; try again in {wait} seconds", details={"retry_after": wait})
    if now - row.updated_at > timedelta(seconds=settings.login_window_seconds):
        row.attempts = 0  # a quiet window forgives old failures
    row.attempts += 1
    row.updated_at = now
    _back_off(row, allowance=allowance, settings=settings)


def _back_off(row: LoginThrottle, *, allowance: int, settings: NodeSettings) -> None:
    """Past the allowance, the next attempt waits ``backoff × 2^(attempts - allowance)`` seconds (capped).

    Set when an attempt is counted (parallel guesses stop at the allowance) and again when it fails (the
    wait runs from the failure's answer, not from its start)."""
    beyond = row.attempts - allowance
    if beyond >= 0:
        delay = min(settings.login_backoff_seconds * 2.0 ** min(beyond, 30), settings.login_backoff_max_seconds)
        until = utcnow() + timedelta(seconds=delay)
        if row.blocked_until is None or row.blocked_until < until:
            row.blocked_until = until


def begin_login(session: Session, *, email: str, client_address: str, settings: NodeSettings) -> LoginAttempt:
    """First transaction of a login: count the attempt (or refuse it) and read the account's hash."""
    _count_attempt(_throttle_row(session, email, client_address), allowance=settings.login_max_failures,
                   settings=settings)
    _count_attempt(_throttle_row(session, ANY_ACCOUNT, client_address),
                   allowance=4 * settings.login_max_failures, settings=settings)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        return LoginAttempt(None, None, False)
    return LoginAttempt(user.id, user.password_hash, user.disabled)


def finish_login(
    session: Session, *, email: str, attempt: LoginAttempt, password_ok: bool, client_address: str,
    settings: NodeSettings,
) -> tuple[Token, str] | None:
    """Second transaction: open a session, or record the failure and return ``None`` (the caller answers
    ``Unauthorized(LOGIN_FAILED)`` once this transaction committed the failure's audit event).

    A wrong password, an unknown email and a disabled account get the same answer."""
    user = session.get(User, attempt.user_id) if attempt.user_id is not None else None
    if (not password_ok or user is None or user.disabled or attempt.disabled
            or user.password_hash != attempt.password_hash):
        for key, allowance in ((email, settings.login_max_failures), (ANY_ACCOUNT, 4 * settings.login_max_failures)):
            _back_off(_throttle_row(session, key, client_address), allowance=allowance, settings=settings)
        audit.record(session, actor=None, action="auth.login_failed", target_type="user",
                     target_id=user.id if user else None, details={"email": email}, client_address=client_address)
        return None
    token, secret = accounts.open_session(session, Token, prefix="gsess", user_id=user.id,
                                          ttl_seconds=settings.session_ttl_seconds, kind=SESSION)
    session.execute(delete(LoginThrottle).where(LoginThrottle.email == email,
                                                LoginThrottle.client_address == client_address))
    # The address's row counted this attempt before the password was checked (so parallel guesses stop at the
    # allowance); a success gives that count back, so only failures add up from one address.
    by_address = _throttle_row(session, ANY_ACCOUNT, client_address)
    by_address.attempts = max(0, by_address.attempts - 1)
    if by_address.attempts < 4 * settings.login_max_failures:
        by_address.blocked_until = None
    session.flush()
    audit.record(session, actor=None, action="auth.login", target_type="user", target_id=user.id,
                 client_address=client_address)
    return token, secret


def logout(session: Session, *, actor: Actor) -> None:
    accounts.end_session(session, Token, actor.token_id)
    audit.record(session, actor=actor, action="auth.logout", target_type="token", target_id=actor.token_id)


def revoke_all_tokens(session: Session, *, user_id: int, keep: int | None = None) -> int:
    """Revoke every live token of a user (sessions and API tokens) but ``keep``; how many were revoked."""
    conditions = [Token.user_id == user_id, Token.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(Token.id != keep)
    result = session.execute(update(Token).where(*conditions).values(revoked_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(
    session: Session, *, actor: Actor, current_ok: bool, seen_hash: str, new_password_hash: str,
) -> None:
    """Change one's own password. Every other token of the account (sessions and API tokens) is revoked.

    The current password was checked, and the new one hashed, by the caller before this transaction;
    ``seen_hash`` is the hash that check read, so a concurrent change is refused rather than overwritten."""
    # OF users: PostgreSQL refuses FOR UPDATE on the nullable side of the joined role
    user = session.get(User, actor.id, with_for_update={"of": User}, populate_existing=True)
    if not current_ok or user is None or user.password_hash != seen_hash:
        raise Forbidden("current password is wrong")
    user.password_hash = new_password_hash
    revoked = revoke_all_tokens(session, user_id=user.id, keep=actor.token_id)
    audit.record(session, actor=actor, action="user.password_changed", target_type="user", target_id=user.id,
                 details={"tokens_revoked": revoked})


def create_api_token(
    session: Session, *, actor: Actor, name: str, expires_in_days: int | None
) -> tuple[Token, str]:
    token, secret = accounts.create_api_token(session, Token, api=Token.kind == API, prefix="gapi", user_id=actor.id,
                                              name=name, expires_in_days=expires_in_days, kind=API)
    audit.record(session, actor=actor, action="token.created", target_type="token", target_id=token.id,
                 details={"name": name})
    return token, secret


def list_api_tokens(session: Session, *, actor: Actor) -> list[Token]:
    return accounts.list_api_tokens(session, Token, api=Token.kind == API, user_id=actor.id)


def revoke_api_token(session: Session, *, actor: Actor, ref: str) -> Token:
    """Revoke one of the caller's own API tokens, named by id or by name (a name of digits too)."""
    token = accounts.revoke_api_token(session, Token, api=Token.kind == API, user_id=actor.id, ref=ref,
                                      match=_named(ref))
    audit.record(session, actor=actor, action="token.revoked", target_type="token", target_id=token.id,
                 details={"name": token.name})
    return token


def _named(ref: str) -> ColumnElement[bool]:
    """The tokens ``ref`` names: by name, or by id too when it is digits."""
    token_id = as_id(ref)
    return or_(Token.name == ref, Token.id == token_id) if token_id is not None else Token.name == ref


# --- every token of a user, for manage_users -------------------------------------------------------------


def _managed_user(session: Session, *, actor: Actor, ref: str, doing: str) -> User:
    from grid_runtime.node.users import service as users

    user = users.resolve(session, ref)
    users.check_may_manage(actor, user, doing=doing)
    return user


def list_user_tokens(session: Session, *, actor: Actor, ref: str, active_only: bool = False) -> list[Token]:
    """Every token of a user (sessions and API tokens, never their secrets), oldest first."""
    user = _managed_user(session, actor=actor, ref=ref, doing="inspected")
    query = select(Token).where(Token.user_id == user.id)
    if active_only:
        query = query.where(Token.revoked_at.is_(None))
    return list(session.scalars(query.order_by(Token.id)))


def revoke_user_token(session: Session, *, actor: Actor, ref: str, token_ref: str) -> Token:
    """Revoke one token of a user, by id or (API tokens) by name."""
    user = _managed_user(session, actor=actor, ref=ref, doing="managed")
    token = session.scalar(select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None), _named(token_ref))
                           .order_by(Token.id).limit(1))
    if token is None:
        raise NotFound(f"{user.email} has no active token {token_ref!r}")
    token.revoked_at = utcnow()
    audit.record(session, actor=actor, action="token.revoked", target_type="token", target_id=token.id,
                 details={"user_id": user.id, "email": user.email, "name": token.name, "kind": token.kind})
    return token


def revoke_user_tokens(session: Session, *, actor: Actor, ref: str) -> int:
    """Revoke every token of a user (sessions and API tokens); how many were live."""
    user = _managed_user(session, actor=actor, ref=ref, doing="managed")
    count = revoke_all_tokens(session, user_id=user.id, keep=actor.token_id if user.id == actor.id else None)
    audit.record(session, actor=actor, action="token.revoked_all", target_type="user", target_id=user.id,
                 details={"email": user.email, "revoked": count})
    return count
