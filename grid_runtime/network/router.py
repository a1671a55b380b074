"""The Network's routes, thin: each names who may call it (``PUBLIC_ROUTES``, ``Requires``, ``RequiresNode``)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import NetworkCapability
from grid_runtime.core.database import transaction
from grid_runtime.core.errors import InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from grid_runtime.core.limits import JSON_NUL
from grid_runtime.core.schemas import Id
from grid_runtime.core.security import hash_password, verify_password
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.tls import fingerprint
from grid_runtime.network import accounts, associations, catalogue, peers
from grid_runtime.network import schemas as s
from grid_runtime.network.deps import DB, Actor, Database, Requires, RequiresNode, client_address, settings
from grid_runtime.network.models import APPROVED, PENDING, Association, AuditEvent, User

DOCUMENTATION_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}
PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/service"), ("POST", "/setup"), ("POST", "/auth/login"),
                 ("POST", "/associations")} | DOCUMENTATION_ROUTES
"""What needs no authentication. Joining is public: it changes nothing until an administrator decides (or the
Node presents an invitation), and the pending requests are bounded."""

router = APIRouter()
ManageNodes = Requires(NetworkCapability.manage_nodes)
ManageUsers = Requires(NetworkCapability.manage_users)
AnyUser = Requires()
Pushing = RequiresNode()


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _user_out(user: User) -> s.UserOut:
    return s.UserOut(id=user.id, email=user.email, full_name=user.full_name, role=user.role.name,
                     disabled=user.disabled, created_at=user.created_at)


def _association_out(association: Association, network: NetworkSettings) -> s.AssociationOut:
    out = s.AssociationOut.model_validate(association)
    out.invited = association.invitation_id is not None
    out.node_ca_sha256 = fingerprint(association.node_ca_pem)
    if association.state == PENDING:
        out.expires_at = association.requested_at + timedelta(seconds=network.join_request_ttl_seconds)
    return out


def _expire_overdue(request: Request, network: NetworkSettings) -> None:
    """Expire the join requests past their time before a read shows them: a write transaction only when a cheap
    read finds one."""
    database = _database(request)
    with transaction(database.read_sessions) as session:
        if not associations.any_overdue(session, settings=network):
            return
    with transaction(database.sessions) as session:
        associations.expire_overdue(session, settings=network)


# --- public ------------------------------------------------------------------------------------------------

@router.get("/health", tags=["health"])
def health(session: DB) -> dict[str, str]:
    """Liveness and database reachability. Public."""
    session.execute(Association.__table__.select().limit(0))
    return {"status": "ok"}


@router.get("/service", tags=["health"])
async def service(network: NetworkSettings = Depends(settings)) -> dict[str, str]:
    """Which service answers here, ``{"kind": "network", "name": ...}``: the Admin shows a Network's pages. Public."""
    return {"kind": "network", "name": network.name}


@router.post("/setup", status_code=status.HTTP_201_CREATED, tags=["auth"])
async def setup(body: s.SetupIn, request: Request, network: NetworkSettings = Depends(settings)) -> dict[str, int]:
    """Create the Owner with the one-time setup token written at first start. Works once."""
    password_hash = await run_in_threadpool(hash_password, body.password)

    def complete() -> int:
        with transaction(_database(request).sessions) as session:
            return accounts.complete_setup(session, setup_token=body.setup_token, email=body.email,
                                           password_hash=password_hash, full_name=body.full_name,
                                           client_address=client_address(request)).id

    user_id = await run_in_threadpool(complete)
    (network.state_dir / accounts.SETUP_TOKEN_FILE).unlink(missing_ok=True)
    return {"user_id": user_id}


@router.post("/auth/login", tags=["auth"])
async def login(body: s.LoginIn, request: Request, network: NetworkSettings = Depends(settings)) -> s.SessionOut:
    """Log in with email and password; returns a session token that expires. Failures are limited per account
    and address (429 with ``Retry-After``); any failure answers 401 "invalid email or password"."""
    database, address = _database(request), client_address(request)

    def check() -> str | None:
        with transaction(database.sessions) as session:
            return accounts.check_login_allowed(session, email=body.email, client_address=address, settings=network)

    seen_hash = await run_in_threadpool(check)
    password_ok = await run_in_threadpool(verify_password, seen_hash, body.password)

    def finish() -> s.SessionOut | None:
        with transaction(database.sessions) as session:
            opened = accounts.finish_login(session, email=body.email, seen_hash=seen_hash, password_ok=password_ok,
                                           client_address=address, settings=network)
            if opened is None:
                return None
            token, secret = opened
            assert token.expires_at is not None  # a session always expires
            return s.SessionOut(token=secret, expires_at=token.expires_at, user_id=token.user_id)

    answer = await run_in_threadpool(finish)
    if answer is None:
        raise Unauthorized(accounts.LOGIN_FAILED)
    return answer


@router.post("/associations", status_code=status.HTTP_201_CREATED, tags=["associations"])
def request_join(body: s.JoinIn, request: Request, session: DB,
                 network: NetworkSettings = Depends(settings)) -> s.JoinOut:
    """A Node asks to join (its administrator ran ``gridctl network join``). Public; pending until an
    administrator approves (or it expires after ``join_request_ttl_seconds``), or approved at once with a valid
    invitation. The push credential is shown once. Without an invitation a join is bounded per client address
    (``join_max_pending_per_address`` waiting, ``join_max_per_hour``) and Network-wide: 429 with ``Retry-After``."""
    association, secret = associations.request_join(
        session, node_name=body.node_name, node_url=body.node_url, node_credential=body.node_credential,
        invitation=body.invitation, settings=network, client_address=client_address(request),
        node_ca_pem=body.node_ca_pem)
    return s.JoinOut(association_id=association.id, state=association.state, network_name=network.name,
                     push_credential=secret)


# --- users and roles ---------------------------------------------------------------------------------------

@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def logout(session: DB, actor: Actor = Depends(AnyUser)) -> None:
    """Revoke the token used for this request."""
    accounts.logout(session, actor=actor)


@router.post("/tokens", status_code=status.HTTP_201_CREATED, tags=["auth"])
def create_token(body: s.TokenCreateIn, session: DB, actor: Actor = Depends(AnyUser)) -> s.TokenCreatedOut:
    """Create a named API token for scripts and CI. The secret is returned once."""
    token, secret = accounts.create_api_token(session, actor=actor, name=body.name,
                                              expires_in_days=body.expires_in_days)
    return s.TokenCreatedOut(**s.TokenOut.model_validate(token).model_dump(), token=secret)


@router.get("/tokens", tags=["auth"])
def list_tokens(session: DB, actor: Actor = Depends(AnyUser)) -> list[s.TokenOut]:
    """Your named API tokens (never their secrets)."""
    return [s.TokenOut.model_validate(t) for t in accounts.list_api_tokens(session, actor=actor)]


@router.delete("/tokens/{ref}", tags=["auth"])
def revoke_token(ref: Annotated[str, Path(min_length=1, max_length=64)], session: DB,
                 actor: Actor = Depends(AnyUser)) -> s.TokenOut:
    """Revoke one of your API tokens, by id or name."""
    return s.TokenOut.model_validate(accounts.revoke_api_token(session, actor=actor, ref=ref))


@router.get("/users/me", tags=["users"])
def me(actor: Actor = Depends(AnyUser)) -> s.UserOut:
    """Your own account."""
    return _user_out(actor.user)


@router.get("/users", tags=["users"])
def list_users(session: DB, actor: Actor = Depends(ManageUsers)) -> list[s.UserOut]:
    """Every user of this Network."""
    return [_user_out(u) for u in accounts.list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"])
async def create_user(body: s.UserCreateIn, request: Request, actor: Actor = Depends(ManageUsers)) -> s.UserOut:
    """Create a user (the default role is Member); you can give only a role whose capabilities you hold."""
    password_hash = await run_in_threadpool(hash_password, body.password)

    def create() -> s.UserOut:
        with transaction(_database(request).sessions) as session:
            return _user_out(accounts.create_user(session, actor=actor, email=body.email, password_hash=password_hash,
                                                  full_name=body.full_name, role_ref=body.role))

    return await run_in_threadpool(create)


@router.patch("/users/{user_id}", tags=["users"])
def update_user(user_id: Id, body: s.UserUpdateIn, session: DB, actor: Actor = Depends(ManageUsers)) -> s.UserOut:
    """Change a user's role or disable them (their sessions end); never your own."""
    return _user_out(accounts.update_user(session, actor=actor, user_id=user_id, role_ref=body.role,
                                          disabled=body.disabled))


@router.get("/roles", tags=["roles"])
def list_roles(session: DB, actor: Actor = Depends(AnyUser)) -> list[s.RoleOut]:
    """Every role and its capabilities."""
    return [s.RoleOut.model_validate(r) for r in accounts.list_roles(session)]


@router.post("/roles", status_code=status.HTTP_201_CREATED, tags=["roles"])
def create_role(body: s.RoleCreateIn, session: DB,
                actor: Actor = Depends(Requires(NetworkCapability.edit_roles))) -> s.RoleOut:
    """Create a custom role from capabilities you hold."""
    return s.RoleOut.model_validate(accounts.create_role(session, actor=actor, name=body.name,
                                                         description=body.description,
                                                         capabilities=body.capabilities))


@router.get("/audit", tags=["audit"])
def audit_log(session: DB, limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=2**31 - 1),
              actor: Actor = Depends(Requires(NetworkCapability.view_statistics))) -> list[s.AuditEventOut]:
    """The Network's audit log, newest first: logins, users, roles, join requests, decisions, invitations, ends."""
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
    return [s.AuditEventOut.model_validate(row) for row in rows]


# --- associations, for the Network's administrators --------------------------------------------------------

@router.get("/associations", tags=["associations"])
def list_associations(request: Request,
                      state: str | None = Query(None, pattern="^(pending|approved|denied|ended|expired)$"),
                      actor: Actor = Depends(ManageNodes),
                      network: NetworkSettings = Depends(settings)) -> list[s.AssociationOut]:
    """Association requests and associations, oldest first, optionally in one state. A request pending longer
    than ``join_request_ttl_seconds`` is shown ``expired`` (it is expired first)."""
    _expire_overdue(request, network)
    with transaction(_database(request).read_sessions) as session:
        return [_association_out(a, network) for a in associations.list_associations(session, state=state)]


def _decide(request: Request, network: NetworkSettings, *, actor: Actor, association_id: int, approve: bool,
            note: str) -> s.AssociationOut:
    """Expire what is overdue in a transaction of its own (it stays expired when the decision is then refused),
    then decide in another."""
    _expire_overdue(request, network)
    with transaction(_database(request).sessions) as session:
        return _association_out(associations.decide(session, actor=actor, association_id=association_id,
                                                    approve=approve, note=note, settings=network), network)


@router.post("/associations/{association_id}/approve", tags=["associations"])
def approve(association_id: Id, body: s.DecisionIn, request: Request, actor: Actor = Depends(ManageNodes),
            network: NetworkSettings = Depends(settings)) -> s.AssociationOut:
    """Approve a pending join request: the Node may push its catalogue from now on. One pending longer than
    ``join_request_ttl_seconds`` has expired: 409."""
    return _decide(request, network, actor=actor, association_id=association_id, approve=True, note=body.note)


@router.post("/associations/{association_id}/deny", tags=["associations"])
def deny(association_id: Id, body: s.DecisionIn, request: Request, actor: Actor = Depends(ManageNodes),
         network: NetworkSettings = Depends(settings)) -> s.AssociationOut:
    """Deny a pending join request (409 once it has expired)."""
    return _decide(request, network, actor=actor, association_id=association_id, approve=False, note=body.note)


@router.delete("/associations/{association_id}", tags=["associations"])
def end_association(association_id: Id, session: DB, actor: Actor = Depends(ManageNodes),
                    network: NetworkSettings = Depends(settings)) -> s.AssociationOut:
    """End an association: the Node's catalogue entries are removed and its credentials stop working."""
    return _association_out(associations.end_by_administrator(session, actor=actor, association_id=association_id),
                            network)


@router.post("/invitations", status_code=status.HTTP_201_CREATED, tags=["associations"])
def invite(body: s.InvitationIn, session: DB, actor: Actor = Depends(ManageNodes),
           network: NetworkSettings = Depends(settings)) -> s.InvitationOut:
    """A one-time code for a Node's administrator: a join presenting it is approved at once. Shown once."""
    invitation, code = associations.create_invitation(session, actor=actor, note=body.note, settings=network)
    return s.InvitationOut(id=invitation.id, code=code, expires_at=invitation.expires_at)


# --- the catalogue, for every user -------------------------------------------------------------------------

@router.get("/search", tags=["catalogue"])
def search(session: DB, text: str | None = Query(None, max_length=200),
           tag: list[str] = Query(default_factory=list, max_length=16),
           kind: str | None = Query(None, pattern="^(tensor|dataset)$"),
           node: str | None = Query(None, max_length=64),
           limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=catalogue.MAX_OFFSET),
           actor: Actor = Depends(AnyUser), network: NetworkSettings = Depends(settings)) -> s.SearchOut:
    """Tensors and datasets of every associated Node matching every word of ``text`` and every ``tag``; each hit
    names its Node, the Node's URL and the object's id there, and how fresh the Node's entries are."""
    tags = [t.strip().lower() for t in tag if t.strip()]
    return catalogue.search(session, text=text, tags=tags, kind=kind, node=node, limit=limit, offset=offset,
                            settings=network)


@router.get("/nodes", tags=["catalogue"])
def list_nodes(session: DB, actor: Actor = Depends(AnyUser),
               network: NetworkSettings = Depends(settings)) -> list[s.NodeOut]:
    """The associated Nodes: name, URL, entries here, when last heard from, stale or not."""
    return catalogue.nodes(session, settings=network)


@router.get("/nodes/{association_id}/statistics", tags=["catalogue"])
async def node_statistics(association_id: Id, request: Request,
                          actor: Actor = Depends(Requires(NetworkCapability.view_statistics)),
                          network: NetworkSettings = Depends(settings)) -> dict[str, object]:
    """A Node's statistics (users, tensors, datasets, requests by state, jobs, ε spent), asked from the Node with
    the credential it gave this Network. 503 if the Node cannot be reached."""
    def find() -> tuple[str, str, str | None]:
        with transaction(_database(request).read_sessions) as session:
            association = session.get(Association, association_id)
            if association is None or association.state != APPROVED or not association.node_credential:
                raise NotFound(f"no approved association {association_id}")
            return association.node_url, association.node_credential, association.node_ca_pem

    url, credential, roots = await run_in_threadpool(find)
    answer = await run_in_threadpool(partial(peers.node_statistics, node_url=url, node_credential=credential,
                                             settings=network, node_ca_pem=roots))
    return {"association_id": association_id, "statistics": answer}


# --- what an associated Node calls, with its push credential -----------------------------------------------

@router.get("/peer/association", tags=["peer"])
def peer_association(request: Request, association: Association = Depends(Pushing),
                     network: NetworkSettings = Depends(settings)) -> s.PeerAssociationOut:
    """The calling Node's own association: its state (pending, approved, denied, expired)."""
    state = association.state
    if state == PENDING:
        _expire_overdue(request, network)
        with transaction(_database(request).read_sessions) as session:
            state = session.scalar(select(Association.state).where(Association.id == association.id)) or state
    return s.PeerAssociationOut(association_id=association.id, state=state, network_name=network.name)


@router.delete("/peer/association", tags=["peer"])
def peer_leave(request: Request, session: DB, association: Association = Depends(Pushing),
               network: NetworkSettings = Depends(settings)) -> s.PeerAssociationOut:
    """The Node ends its own association: its entries are removed and its push credential stops working."""
    current = session.get(Association, association.id)
    assert current is not None
    associations.end(session, association=current, actor_id=None, by="node", client_address=client_address(request))
    return s.PeerAssociationOut(association_id=current.id, state=current.state, network_name=network.name)


_PUSH_BODY = {"requestBody": {"required": True, "description": "a PushIn document (docs/network.md), JSON, at most "
                              "max_push_bytes", "content": {"application/vnd.gridctl.push+json": {
                                  "schema": {"type": "object"}}}}}


@router.post("/peer/catalogue", tags=["peer"], openapi_extra=_PUSH_BODY)
async def push(request: Request, association: Association = Depends(Pushing),
               network: NetworkSettings = Depends(settings)) -> s.PushOut:
    """Upsert and delete the calling Node's catalogue entries (metadata only). Refused whole, changing nothing,
    when too large, not matching the schema, naming another Node, or before approval."""
    limit = network.max_push_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise PayloadTooLarge(f"a push is at most {limit} bytes", details={"max_push_bytes": limit})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"a push is at most {limit} bytes", details={"max_push_bytes": limit})
    if JSON_NUL.search(body):
        raise InvalidInput("the push holds a NUL character (U+0000), which no text may contain")
    try:
        document = s.PushIn.model_validate_json(bytes(body))
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()[:20]]
        raise InvalidInput("the push does not match the catalogue schema", details=problems) from None
    association_id = association.id

    def apply() -> s.PushOut:
        with transaction(_database(request).sessions) as session:
            current = session.get(Association, association_id)
            assert current is not None
            return catalogue.ingest(session, association=current, push=document, settings=network)

    return await run_in_threadpool(apply)

