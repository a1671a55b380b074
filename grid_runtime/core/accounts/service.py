"""What the Node and the Network do the same way for their people, on the table classes each passes in
(``core.accounts.models``): preset roles, the one-time setup token, and creating the Owner with it.
Sessions and named API tokens: opening, creating, listing and revoking them (each service says which of its
tokens are API tokens, and which columns of its own a new one has). Audit events stay with the caller (each
service has its own audit log), and so does the throttling of logins (the Node's backs off exponentially)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from grid_runtime.core.accounts.models import RoleColumns, SetupTokenColumns, TokenColumns, UserColumns
from grid_runtime.core.capabilities import OWNER_ROLE
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import AlreadyExists, Forbidden, NotFound, Unauthorized
from grid_runtime.core.security import hash_token, new_token, write_private_file

SETUP_TOKEN_FILE = "setup-token"  # noqa: S105  (a file name, not a secret)
LOGIN_FAILED = "invalid email or password"
AUTHENTICATION_REQUIRED = "authentication required: send 'Authorization: Bearer <token>'"
INVALID_TOKEN = "token is invalid, expired or revoked; log in again"  # noqa: S105  (a message)

UserT = TypeVar("UserT", bound=UserColumns)
CapabilityT = TypeVar("CapabilityT", bound=StrEnum)


def seed_preset_roles(session: Session, *, roles: type[RoleColumns], presets: Mapping[str, Iterable[str]],
                      descriptions: Mapping[str, str]) -> None:
    """Create the preset roles, or bring them back to what this version says they hold."""
    existing = {r.name: r for r in session.scalars(select(roles).where(roles.name.in_(presets)))}
    for name, caps in presets.items():
        role = existing.get(name) or roles(name=name)
        role.capabilities = sorted(caps)
        role.description = descriptions[name]
        role.preset = True
        session.add(role)


def owner_exists(session: Session, *, users: type[UserColumns], roles: type[RoleColumns]) -> bool:
    return session.scalar(select(users.id).join(roles).where(roles.name == OWNER_ROLE).limit(1)) is not None


def issue_setup_token(session: Session, state_dir: Path, *, setup_tokens: type[SetupTokenColumns],
                      has_owner: bool, prefix: str) -> None:
    """Before the Owner exists, make sure a one-time setup token is in force and in ``state_dir/setup-token``.

    A token already in the file is adopted (a cloud deploy provisions it from the secret store before the
    first start, so the operator who generated it can complete setup) and the file made owner-only; otherwise
    a new one (``prefix`` and a random secret) is written, owner-only. Once the Owner exists the file is removed.
    """
    path = state_dir / SETUP_TOKEN_FILE
    if has_owner:
        path.unlink(missing_ok=True)
        return
    provisioned = path.read_text().strip() if path.exists() else ""
    adopted = select(setup_tokens.id).where(setup_tokens.token_hash == hash_token(provisioned))
    if provisioned and session.scalar(adopted):
        return
    session.execute(delete(setup_tokens))
    if provisioned:
        session.add(setup_tokens(token_hash=hash_token(provisioned)))
        path.chmod(0o600)
        return
    token, digest = new_token(prefix)
    session.add(setup_tokens(token_hash=digest))
    write_private_file(path, token + "\n")


def create_owner(session: Session, *, setup_token: str, setup_tokens: type[SetupTokenColumns], users: type[UserT],
                 roles: type[RoleColumns], service: str, email: str, full_name: str, password_hash: str) -> UserT:
    """Consume the one-time setup token (its row locked for the transaction) and create the Owner (flushed);
    ``Forbidden`` if the token is unknown or used, or if ``service`` (the Node, the Network) already has an Owner.

    ``password_hash`` is hashed by the caller before the transaction (argon2 never runs inside one); the caller
    records the audit event, and removes the token's file once the transaction committed."""
    row = session.scalar(select(setup_tokens).where(setup_tokens.token_hash == hash_token(setup_token))
                         .with_for_update())
    if row is None or row.used_at is not None or owner_exists(session, users=users, roles=roles):
        raise Forbidden(f"setup token is invalid or already used; this {service} already has an Owner")
    role = session.scalar(select(roles).where(roles.name == OWNER_ROLE))
    assert role is not None, "preset roles are seeded at start"
    if session.scalar(select(users.id).where(users.email == email)):
        raise AlreadyExists(f"a user with email {email} already exists")
    owner = users(email=email, full_name=full_name, password_hash=password_hash, role=role)
    session.add(owner)
    row.used_at = utcnow()
    session.flush()
    return owner


def remove_setup_token_file(state_dir: Path) -> None:
    """After the setup transaction committed (file I/O never runs inside a transaction)."""
    (state_dir / SETUP_TOKEN_FILE).unlink(missing_ok=True)


# --- sessions and API tokens ---------------------------------------------------------------------------------

TokenT = TypeVar("TokenT", bound=TokenColumns)


def _issue(session: Session, tokens: type[TokenT], *, prefix: str, user_id: int, name: str | None,
           expires_at: datetime | None, columns: Mapping[str, object]) -> tuple[TokenT, str]:
    secret, digest = new_token(prefix)
    token = tokens(user_id=user_id, name=name, token_hash=digest, expires_at=expires_at, **columns)
    session.add(token)
    session.flush()
    return token, secret


def open_session(session: Session, tokens: type[TokenT], *, prefix: str, user_id: int, ttl_seconds: float,
                 **columns: object) -> tuple[TokenT, str]:
    """A new session of ``user_id`` after a successful login (flushed) and its secret, shown once."""
    return _issue(session, tokens, prefix=prefix, user_id=user_id, name=None,
                  expires_at=utcnow() + timedelta(seconds=ttl_seconds), columns=columns)


def end_session(session: Session, tokens: type[TokenColumns], token_id: int) -> None:
    """Revoke the token a caller logs out with."""
    token = session.get(tokens, token_id)
    if token is not None:
        token.revoked_at = utcnow()


def create_api_token(session: Session, tokens: type[TokenT], *, api: ColumnElement[bool], prefix: str,
                     user_id: int, name: str, expires_in_days: int | None, **columns: object) -> tuple[TokenT, str]:
    """A new named API token of ``user_id`` (flushed) and its secret, shown once; ``AlreadyExists`` while the user
    has a live API token (``api``: what makes a row one) of that name."""
    live = select(tokens.id).where(tokens.user_id == user_id, api, tokens.name == name, tokens.revoked_at.is_(None))
    if session.scalar(live):
        raise AlreadyExists(f"you already have an active token named {name!r}")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    return _issue(session, tokens, prefix=prefix, user_id=user_id, name=name, expires_at=expires_at, columns=columns)


def list_api_tokens(session: Session, tokens: type[TokenT], *, api: ColumnElement[bool], user_id: int) -> list[TokenT]:
    """A user's API tokens (live or not), oldest first."""
    return list(session.scalars(select(tokens).where(tokens.user_id == user_id, api).order_by(tokens.id)))


def revoke_api_token(session: Session, tokens: type[TokenT], *, api: ColumnElement[bool], user_id: int, ref: str,
                     match: ColumnElement[bool]) -> TokenT:
    """Revoke a user's live API token that ``match``es ``ref`` (the caller says how a ref names a token);
    ``NotFound`` if there is none."""
    token = session.scalar(select(tokens).where(tokens.user_id == user_id, api, tokens.revoked_at.is_(None), match))
    if token is None:
        raise NotFound(f"no active API token {ref!r}")
    token.revoked_at = utcnow()
    return token


# --- who calls -----------------------------------------------------------------------------------------------

def check_token_live(token: TokenColumns, *, user_disabled: bool, now: datetime) -> None:
    """``Unauthorized`` unless the token is neither revoked nor expired and its user is not disabled (the same
    answer whichever it is; a disabled account's tokens are revoked anyway)."""
    if token.revoked_at is not None or (token.expires_at and token.expires_at <= now) or user_disabled:
        raise Unauthorized(INVALID_TOKEN)


def check_capabilities(held: AbstractSet[CapabilityT], needed: AbstractSet[CapabilityT]) -> None:
    """``Forbidden``, naming what is missing, unless ``held`` has every capability ``needed``."""
    missing = sorted(needed - held)
    if missing:
        raise Forbidden(f"this needs the capability {', '.join(missing)}, which your role does not have",
                        details={"missing": missing})
