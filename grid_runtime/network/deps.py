"""Request-scoped dependencies of the Network: the session, the authenticated user, the pushing Node.

Every route but the explicitly public ones declares who may call it: ``Requires(...)`` (a Network user holding
the named capabilities) or ``RequiresNode()`` (an associated Node presenting the push credential the Network
issued it). ``app.py`` refuses to build an app with a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from grid_runtime.core import web
from grid_runtime.core.accounts.service import (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    check_capabilities,
    check_token_live,
)
from grid_runtime.core.capabilities import NetworkCapability
from grid_runtime.core.database import make_sessionmaker, read_engine, utcnow
from grid_runtime.core.errors import Unauthorized
from grid_runtime.core.security import hash_token
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.models import ENDED, Association, Token, User

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_bearer = HTTPBearer(auto_error=False, description="a session token from login, or a Node's push credential")


class Database:
    """The engine and its two session factories: reads begin as SQLite readers (never wait for the writer)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        self.read_sessions: sessionmaker[Session] = make_sessionmaker(read_engine(engine))


def db(request: Request) -> Iterator[Session]:
    """One transaction per request: a read for GET, a write otherwise; committed when the route returns."""
    database: Database = request.app.state.database
    factory = database.read_sessions if request.method in READ_METHODS else database.sessions
    with factory() as session, session.begin():
        yield session


DB = Annotated[Session, Depends(db, scope="function")]


def settings(request: Request) -> NetworkSettings:
    return request.app.state.settings


def client_address(request: Request) -> str:
    """The caller's address, behind the Network's ``trusted_proxies`` (``core.web.client_address``)."""
    network: NetworkSettings = request.app.state.settings
    return web.client_address(request, network.trusted_proxies)


@dataclass(frozen=True)
class Actor:
    user: User
    capabilities: frozenset[NetworkCapability]
    token_id: int
    client_address: str

    @property
    def id(self) -> int:
        return self.user.id


def current_actor(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Actor:
    """The user a session token names, read in a short read transaction of its own (never the request's: a route
    that hashes a password between transactions holds none while it does)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(AUTHENTICATION_REQUIRED)
    database: Database = request.app.state.database
    with database.read_sessions() as session, session.begin():
        row = session.execute(select(Token, User).join(User, User.id == Token.user_id)
                              .where(Token.token_hash == hash_token(credentials.credentials))).first()
    if row is None:
        raise Unauthorized(INVALID_TOKEN)
    token, user = row[0], row[1]
    check_token_live(token, user_disabled=user.disabled, now=utcnow())
    caps = frozenset(NetworkCapability(c) for c in user.role.capabilities if c in NetworkCapability.__members__)
    return Actor(user=user, capabilities=caps, token_id=token.id, client_address=client_address(request))


class Requires:
    """Dependency: an authenticated Network user holding every named capability (none named: any user)."""

    def __init__(self, *capabilities: NetworkCapability) -> None:
        self.capabilities = frozenset(capabilities)

    async def __call__(self, actor: Actor = Depends(current_actor)) -> Actor:
        check_capabilities(actor.capabilities, self.capabilities)
        return actor


class RequiresNode:
    """Dependency: the association whose push credential the caller presents (any state but ended; the route
    decides what a pending association may do). An unknown or ended credential is 401.

    Looked up in a short read transaction of its own, not the request's: a push then reads its body holding no
    transaction, and applies it in one write transaction (the association is returned detached)."""

    def __call__(self, request: Request,
                 credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Association:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("a Node authenticates with its push credential: 'Authorization: Bearer <secret>'")
        database: Database = request.app.state.database
        with database.read_sessions() as session, session.begin():
            association = session.scalar(select(Association)
                                         .where(Association.push_hash == hash_token(credentials.credentials)))
        if association is None or association.state == ENDED:
            raise Unauthorized("this push credential is unknown, or its association has ended")
        return association
