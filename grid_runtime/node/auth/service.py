"""Setup of the Owner, login with rate limiting, sessions, named API tokens and password changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grid_runtime.core.capabilities import OWNER_ROLE
from grid_runtime.core.database import transaction, utcnow
from grid_runtime.core.errors import AlreadyExists, Forbidden, NotFound, RateLimited, Unauthorized
from grid_runtime.core.security import (
    hash_password,
    hash_token,
    new_token,
    verify_password,
    write_private_file,
)
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.audit import service as audit
from grid_runtime.node.auth.models import API, SESSION, LoginFailure, SetupToken, Token
from grid_runtime.node.deps import Actor
from grid_runtime.node.roles.models import Role
from grid_runtime.node.users.models import User

SETUP_TOKEN_FILE = "setup-token"  # noqa: S105  (a file name, not a secret)


def owner_exists(session: Session) -> bool:
    return session.scalar(select(User.id).join(Role).where(Role.name == OWNER_ROLE).limit(1)) is not None


def issue_setup_token(session: Session, state_dir: Path) -> None:
    """Before the Owner exists, make sure a one-time setup token is in force and in the state dir.

    A token already in the file is adopted (a cloud deploy provisions it from the secret store before the
    first start, so the operator who generated it can complete setup); otherwise a new one is written,
    owner-only. Once the Owner exists the file is removed.
    """
    path = state_dir / SETUP_TOKEN_FILE
    if owner_exists(session):
        path.unlink(missing_ok=True)
        return
    provisioned = path.read_text().strip() if path.exists() else ""
    if provisioned and session.scalar(select(SetupToken.id).where(SetupToken.token_hash == hash_token(provisioned))):
        return
    session.execute(delete(SetupToken))
    if provisioned:
        session.add(SetupToken(token_hash=hash_token(provisioned)))
        path.chmod(0o600)
        return
    token, digest = new_token("gsetup")
    session.add(SetupToken(token_hash=digest))
    write_private_file(path, token + "\n")


def complete_setup(
    session: Session, *, setup_token: str, email: str, password: str, full_name: str, state_dir: Path,
    client_address: str,
) -> User:
    """Create the Owner with the one-time token; the token is consumed and its file removed."""
    row = session.scalar(
        select(SetupToken).where(SetupToken.token_hash == hash_token(setup_token)).with_for_update()
    )
    if row is None or row.used_at is not None or owner_exists(session):
        raise Forbidden("setup token is invalid or already used; this Node already has an Owner")
    role = session.scalar(select(Role).where(Role.name == OWNER_ROLE))
    assert role is not None, "preset roles are seeded at start"
    if session.scalar(select(User.id).where(User.email == email)):
        raise AlreadyExists(f"a user with email {email} already exists")
    owner = User(email=email, full_name=full_name, password_hash=hash_password(password), role=role)
    session.add(owner)
    row.used_at = utcnow()
    session.flush()
    audit.record(session, actor=None, action="node.setup", target_type="user", target_id=owner.id,
                 details={"email": email}, client_address=client_address)
    (state_dir / SETUP_TOKEN_FILE).unlink(missing_ok=True)
    return owner


def check_login_rate(session: Session, *, email: str, client_address: str, settings: NodeSettings) -> None:
    since = utcnow() - timedelta(seconds=settings.login_window_seconds)
    recent = select(func.count()).select_from(LoginFailure).where(LoginFailure.at > since)
    by_account = session.scalar(recent.where(LoginFailure.email == email)) or 0
    by_address = session.scalar(recent.where(LoginFailure.client_address == client_address)) or 0
    # An address may try a few accounts (a shared office), an account only its own allowance.
    if by_account >= settings.login_max_failures or by_address >= 4 * settings.login_max_failures:
        raise RateLimited(
            f"too many failed logins; try again in {settings.login_window_seconds} seconds",
            details={"retry_after": settings.login_window_seconds},
        )


def record_login_failure(factory: sessionmaker[Session], *, email: str, client_address: str) -> None:
    """Recorded in its own transaction: the failed request's transaction is rolled back."""
    with transaction(factory) as session:
        session.add(LoginFailure(email=email, client_address=client_address))
        audit.record(session, actor=None, action="auth.login_failed", target_type="user", target_id=None,
                     details={"email": email}, client_address=client_address)


def login(
    session: Session, *, email: str, password: str, client_address: str, settings: NodeSettings
) -> tuple[Token, str]:
    """Check the password and open a session. Raises ``Unauthorized`` with one message for any failure."""
    check_login_rate(session, email=email, client_address=client_address, settings=settings)
    user = session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("invalid email or password")
    if user.disabled:
        raise Unauthorized("this account is disabled")
    secret, digest = new_token("gsess")
    token = Token(user_id=user.id, kind=SESSION, token_hash=digest,
                  expires_at=utcnow() + timedelta(seconds=settings.session_ttl_seconds))
    session.add(token)
    session.execute(delete(LoginFailure).where(LoginFailure.email == email))
    session.flush()
    audit.record(session, actor=None, action="auth.login", target_type="user", target_id=user.id,
                 client_address=client_address)
    return token, secret


def logout(session: Session, *, actor: Actor) -> None:
    token = session.get(Token, actor.token_id)
    if token is not None:
        token.revoked_at = utcnow()
    audit.record(session, actor=actor, action="auth.logout", target_type="token", target_id=actor.token_id)


def change_password(session: Session, *, actor: Actor, current_password: str, new_password: str) -> None:
    """Change one's own password. Other sessions are revoked; named API tokens stay valid."""
    user = actor.user
    if not verify_password(user.password_hash, current_password):
        raise Forbidden("current password is wrong")
    user.password_hash = hash_password(new_password)
    now = utcnow()
    for token in session.scalars(
        select(Token).where(Token.user_id == user.id, Token.kind == SESSION, Token.id != actor.token_id,
                            Token.revoked_at.is_(None))
    ):
        token.revoked_at = now  # other logged-in sessions must log in again
    audit.record(session, actor=actor, action="user.password_changed", target_type="user", target_id=user.id)


def create_api_token(
    session: Session, *, actor: Actor, name: str, expires_in_days: int | None
) -> tuple[Token, str]:
    active = select(Token.id).where(Token.user_id == actor.id, Token.kind == API, Token.name == name,
                                    Token.revoked_at.is_(None))
    if session.scalar(active):
        raise AlreadyExists(f"you already have an active token named {name!r}")
    secret, digest = new_token("gapi")
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    token = Token(user_id=actor.id, kind=API, name=name, token_hash=digest, expires_at=expires)
    session.add(token)
    session.flush()
    audit.record(session, actor=actor, action="token.created", target_type="token", target_id=token.id,
                 details={"name": name})
    return token, secret


def list_api_tokens(session: Session, *, actor: Actor) -> list[Token]:
    query = select(Token).where(Token.user_id == actor.id, Token.kind == API).order_by(Token.id)
    return list(session.scalars(query))


def revoke_api_token(session: Session, *, actor: Actor, ref: str) -> Token:
    """Revoke one of the caller's own API tokens, named by id or by name."""
    match = or_(Token.name == ref, Token.id == int(ref)) if ref.isdigit() else Token.name == ref
    token = session.scalar(
        select(Token).where(Token.user_id == actor.id, Token.kind == API, Token.revoked_at.is_(None), match)
    )
    if token is None:
        raise NotFound(f"no active API token {ref!r}")
    token.revoked_at = utcnow()
    audit.record(session, actor=actor, action="token.revoked", target_type="token", target_id=token.id,
                 details={"name": token.name})
    return token
