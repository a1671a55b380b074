"""Request-scoped dependencies: the database session and the authenticated actor.

Every protected route declares what it needs with ``Depends(Requires(...))``: ``Requires()`` for any
authenticated user, ``Requires(Capability.x)`` for a capability. Nothing checks role names inline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Forbidden, Unauthorized
from grid_runtime.core.security import hash_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.auth.models import Token
from grid_runtime.node.users.models import User

_bearer = HTTPBearer(auto_error=False, description="a session token from login, or a named API token")
_TOUCH_INTERVAL = timedelta(minutes=1)


async def db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    A request waits for a session slot here, on the event loop, before it touches the database: a
    request's steps hop between worker threads (dependencies, then the route), and if threads could block
    on the pool or on SQLite's write lock, every thread could end up waiting for a transaction whose next
    step needs a thread (a deadlock until the timeouts). With no more open transactions than connections
    (one on SQLite, see ``session_slots``), threads never wait for one another. The commit also runs
    here, on the event loop; commits are short.

    On SQLite a transaction holds the write lock from its start, so a route must not open a second
    session while this one is open (see ``auth.router.login`` for work that must outlive a rollback).
    """
    async with request.app.state.session_slots:
        session = request.app.state.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


DB = Annotated[Session, Depends(db, scope="function")]
"""The request's session; its transaction ends before the response is sent."""


def settings(request: Request) -> NodeSettings:
    return request.app.state.settings


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Actor:
    """Who is calling: the user, what their role lets them do, the token used, and from where."""

    user: User
    capabilities: frozenset[Capability]
    token_id: int
    client_address: str

    @property
    def id(self) -> int:
        return self.user.id

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


def current_actor(
    request: Request,
    session: DB,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    token = session.scalar(select(Token).where(Token.token_hash == hash_token(credentials.credentials)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        raise Unauthorized("token is invalid, expired or revoked; log in again")
    user = session.get(User, token.user_id)
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled")
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_INTERVAL:
        token.last_used_at = now
    caps = frozenset(Capability(c) for c in user.role.capabilities)
    return Actor(user=user, capabilities=caps, token_id=token.id, client_address=client_address(request))


class Requires:
    """Dependency: an authenticated actor holding every named capability (none named: any user)."""

    def __init__(self, *capabilities: Capability) -> None:
        self.capabilities = frozenset(capabilities)

    def __call__(self, actor: Actor = Depends(current_actor)) -> Actor:
        missing = sorted(self.capabilities - actor.capabilities)
        if missing:
            raise Forbidden(
                f"this needs the capability {', '.join(missing)}, which your role does not have",
                details={"missing": missing},
            )
        return actor
