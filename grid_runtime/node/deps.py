"""Request-scoped dependencies: the database session and the authenticated actor.

Every protected route declares what it needs with ``Depends(Requires(...))``: ``Requires()`` for any
authenticated user, ``Requires(Capability.x)`` for a capability. Nothing checks role names inline.

Sessions and concurrency (docs/benchmarks.md, "Load"):

- A ``GET``/``HEAD``/``OPTIONS`` request gets a *read* session. On SQLite it begins a plain WAL read
  transaction: it neither takes ``BEGIN IMMEDIATE`` nor waits for the writer, and up to ``READ_SLOTS`` run
  at once. Should such a request write after all (an audited download, a request expired on the way), the
  read transaction refuses the write (``WriteNeeded``) and ``RetryReadAsWrite`` runs the request again,
  this time as a write. The token's ``last_used_at`` is touched after a read in its own short write.
- Any other method gets a *write* session: on SQLite one writer at a time (``BEGIN IMMEDIATE``, one slot);
  on PostgreSQL reads and writes share ``POSTGRES_REQUEST_SLOTS`` (the pool has more connections, for the
  job runner and background work). Slots are few on purpose: the Node is one Python process, and more
  transactions in flight than a few only make threads contend for the interpreter.
- Slots are taken on the event loop, never in a worker thread, so threads never wait for one another.
  ``/health`` pings the database through a slot of its own, so a probe never queues behind a crowd.
- Password hashing, file I/O and network never run inside a transaction: routes do that work before
  their session is used or after ``released_session``.

Streaming bodies: FastAPI reads a JSON body before any dependency runs, so such routes never hold a
session while the body arrives. A route that streams its own body (``request.stream()``, uploads) must
not hold one either: wrap the streaming (and any conversion of the file) in
``async with released_session(request):``, which commits what authentication did, gives the slot back,
and takes a slot again when the block ends; the session stays usable afterwards (new transaction)::

    async def upload(request: Request, session: DB, actor: Actor = Depends(Requires(...))) -> Out:
        async with released_session(request):
            await receive_body(request, path, limit)        # no session, no slot held here
        return await run_in_threadpool(store, session, ...)  # a fresh write transaction
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, bindparam, event, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grid_runtime.core import web
from grid_runtime.core.accounts.service import (
    AUTHENTICATION_REQUIRED,
    INVALID_TOKEN,
    check_capabilities,
    check_token_live,
)
from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import (
    POSTGRES_REQUEST_SLOTS,
    READ_SLOTS,
    is_sqlite,
    make_sessionmaker,
    read_engine,
    utcnow,
)
from grid_runtime.core.errors import Unauthorized
from grid_runtime.core.security import hash_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.auth.models import Token
from grid_runtime.node.probes import probe_for
from grid_runtime.node.users.models import User

log = logging.getLogger("grid_runtime.node")
_bearer = HTTPBearer(auto_error=False, description="a session token from login, or a named API token")
_TOUCH_INTERVAL = timedelta(minutes=1)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_AS_WRITE = "grid.as_write"
_LEASE = "grid.lease"
_READ_ONLY = "read_only"
T = TypeVar("T")


class WriteNeeded(Exception):
    """A read transaction (SQLite) was asked to write: the request is run again with a write session."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    raise WriteNeeded("a read transaction tried to write")


def _refuse_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise WriteNeeded("a read transaction tried to write")


class Database:
    """The app's engine, its session factories and the slots that bound the open transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        """Write sessions (also what background work and tests use)."""
        self.sqlite = is_sqlite(engine)
        if self.sqlite:
            self.read_sessions: sessionmaker[Session] = sessionmaker(
                bind=read_engine(engine), expire_on_commit=False, info={_READ_ONLY: True})
            event.listen(self.read_sessions, "before_flush", _refuse_flush)
            event.listen(self.read_sessions, "do_orm_execute", _refuse_dml)
            self.read_slots = asyncio.Semaphore(READ_SLOTS)
            self.write_slots = asyncio.Semaphore(1)
        else:
            self.read_sessions = self.sessions
            self.read_slots = self.write_slots = asyncio.Semaphore(POSTGRES_REQUEST_SLOTS)
        self.ping_slots = asyncio.Semaphore(2)
        self.probe = probe_for(engine)
        self.hash_slots = asyncio.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        self._touching: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def begin(self, *, write: bool = True) -> AsyncIterator[Session]:
        """A transaction of its own, for a route that does slow work (argon2, a body) between short ones.

        Taken on the event loop like the request's; use the session from worker threads
        (``await database.run(fn)`` does both)."""
        lease = _Lease(self, write=write)
        await lease.acquire()
        try:
            yield lease.session
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_finish, lease.session, commit=True)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_finish, lease.session, commit=False)
            raise
        finally:
            lease.release()

    async def run(self, fn: Callable[[Session], T], *, write: bool = True) -> T:
        """``fn(session)`` in a worker thread, in a short transaction of its own (committed if it returns)."""
        async with self.begin(write=write) as session:
            return await run_in_threadpool(fn, session)

    async def hash(self, fn: Callable[..., T], *args: Any) -> T:
        """Run argon2 (``hash_password``, ``verify_password``) in a worker thread, outside any transaction,
        with at most ``hash_slots`` at once: a crowd of logins never takes every core from the rest."""
        async with self.hash_slots:
            return await run_in_threadpool(fn, *args)

    async def ping(self) -> None:
        """``SELECT 1`` in a read transaction, through a slot of its own (``/health``).

        First on the event loop itself, by a connection kept for the purpose (``grid_runtime.node.probes``): no
        worker thread, whose hand-offs of the interpreter kept ``/health`` waiting behind a crowd
        (docs/benchmarks.md, "Load"). Should the probe fail, the ping is made the usual way, whose error is the
        answer."""
        if self.probe is not None and await self.probe.ping():
            return
        async with self.ping_slots:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self._ping_now)

    def _ping_now(self) -> None:
        with self.read_sessions() as session:
            session.execute(text("SELECT 1"))

    def touch_later(self, token_ids: Iterable[int]) -> None:
        """Record that these tokens were used, in a short write of its own that no response waits for."""
        ids = set(token_ids) - self._touching
        if not ids:
            return
        self._touching |= ids
        task = asyncio.get_running_loop().create_task(self._touch(ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _touch(self, ids: set[int]) -> None:
        try:
            async with self.write_slots:
                await run_in_threadpool(self._touch_now, ids)
        except Exception:  # a lost touch costs nothing but a stale "last used"
            log.warning("could not record the use of tokens %s", sorted(ids), exc_info=True)
        finally:
            self._touching -= ids

    def _touch_now(self, ids: set[int]) -> None:
        with self.sessions.begin() as session:
            session.execute(update(Token).where(Token.id.in_(ids)).values(last_used_at=utcnow()))

    async def drain(self) -> None:
        """Wait for the pending touches (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _Lease:
    """A request's session and whether it holds its slot."""

    def __init__(self, database: Database, *, write: bool) -> None:
        self.database = database
        self.write = write
        self.slot = database.write_slots if write else database.read_slots
        self.session = (database.sessions if write else database.read_sessions)()
        self.held = False
        self.touches: set[int] = set()

    async def acquire(self) -> None:
        await self.slot.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.slot.release()


def _finish(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def db(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    A read (``GET``...) or a write, by the request's method (see the module's docstring). The slot is
    taken here, on the event loop, before the request touches the database; commit or rollback run in a
    worker thread, shielded from cancellation so that a client that goes away never leaks a connection,
    except where nothing can wait: a SQLite read transaction, or one ``in_thread`` already committed.
    """
    database: Database = request.app.state.database
    write = request.method not in READ_METHODS or bool(request.scope.get(_AS_WRITE))
    lease = _Lease(database, write=write)
    request.state.db_lease = lease
    lease.session.info[_LEASE] = lease
    await lease.acquire()
    # Ending a SQLite read transaction neither waits nor writes: done here, without a trip to a worker thread.
    inline = database.sqlite and not write
    try:
        yield lease.session
        if inline or not lease.session.in_transaction():  # nothing to wait for (``in_thread`` committed it)
            _finish(lease.session, commit=True)
        else:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_finish, lease.session, commit=True)
    except BaseException as exc:
        if inline:
            _finish(lease.session, commit=False)
        else:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(_finish, lease.session, commit=False)
        if not write and database.sqlite and isinstance(exc, OperationalError) and "locked" in str(exc):
            raise WriteNeeded("a read transaction could not write") from exc
        raise
    finally:
        lease.release()
        if lease.touches:
            database.touch_later(lease.touches)


DB = Annotated[Session, Depends(db, scope="function")]
"""The request's session; its transaction ends before the response is sent."""


async def in_thread(session: Session, work: Callable[[], T]) -> T:
    """Run a route's ``work`` and then commit the request's transaction, in one call to a worker thread.

    For ``async def`` routes whose work is all database work: a sync route costs a trip to a worker thread for
    its body, another for checking its answer and another to commit; this is one. ``work`` returns the
    answer as API shapes (not ORM rows, which would be read after the commit). An exception rolls back as
    usual (``db``)."""
    lease: _Lease = session.info[_LEASE]

    def run() -> T:
        answer = work()
        lease.session.commit()
        return answer

    return await run_in_threadpool(run)


@asynccontextmanager
async def released_session(request: Request) -> AsyncIterator[None]:
    """Commit the request's transaction and give its slot back for the block (a body streaming in, a file
    being converted); the slot is taken again when the block ends and the session stays usable."""
    lease: _Lease = request.state.db_lease
    await run_in_threadpool(lease.session.commit)
    lease.release()
    try:
        yield
    finally:
        await lease.acquire()


class RetryReadAsWrite:
    """ASGI middleware: a read request whose transaction had to write is run again as a write.

    Only before its response has started (a read request has no body to replay)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READ_METHODS:
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except WriteNeeded:
            if started:
                raise
            await self.app({**scope, _AS_WRITE: True}, receive, send)


def settings(request: Request) -> NodeSettings:
    return request.app.state.settings


def client_address(request: Request) -> str:
    """The caller's address, behind the Node's ``trusted_proxies`` (``core.web.client_address``)."""
    node: NodeSettings = request.app.state.settings
    return web.client_address(request, node.trusted_proxies)


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

    def is_named_by(self, ref: str | int) -> bool:
        """Whether a user reference (id or email) names the actor: decided without a lookup, so that a route
        refusing others can answer before it could tell "no such user" from "not yours"."""
        from grid_runtime.core.schemas import as_id

        return as_id(ref) == self.user.id or str(ref).strip().lower() == self.user.email.lower()


_ACTOR_QUERY = (select(Token, User).join(User, User.id == Token.user_id)
                .where(Token.token_hash == bindparam("token_hash")))
"""Built once: authentication runs on every request."""


def current_actor(
    request: Request,
    session: DB,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(AUTHENTICATION_REQUIRED)
    row = session.execute(_ACTOR_QUERY, {"token_hash": hash_token(credentials.credentials)}).first()
    now = utcnow()
    if row is None:
        raise Unauthorized(INVALID_TOKEN)
    token, user = row[0], row[1]
    check_token_live(token, user_disabled=user.disabled, now=now)
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_INTERVAL:
        if session.info.get(_READ_ONLY):
            request.state.db_lease.touches.add(token.id)
        else:
            token.last_used_at = now
    caps = frozenset(Capability(c) for c in user.role.capabilities)
    return Actor(user=user, capabilities=caps, token_id=token.id, client_address=client_address(request))


class Requires:
    """Dependency: an authenticated actor holding every named capability (none named: any user)."""

    def __init__(self, *capabilities: Capability) -> None:
        self.capabilities = frozenset(capabilities)

    async def __call__(self, actor: Actor = Depends(current_actor)) -> Actor:
        # async: a pure check, run on the event loop rather than a worker thread
        check_capabilities(actor.capabilities, self.capabilities)
        return actor
