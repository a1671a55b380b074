"""Setup, login and logout, password changes, API tokens; and, for ``manage_users``, any user's tokens.

Argon2 runs between transactions, never inside one (``Database.hash``), so neither a login nor a password
change holds the writer (SQLite) or a pooled connection while it hashes.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Unauthorized
from grid_runtime.core.security import hash_password, verify_password
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.auth import schemas, service
from grid_runtime.node.deps import DB, Actor, Database, Requires, client_address, released_session, settings
from grid_runtime.node.routing import NameRoute

TokenRef = Annotated[str, Path(min_length=1, max_length=64, description="a token's id, or an API token's name")]
UserRefPath = Annotated[str, Path(min_length=1, max_length=254, description="a user's id or email")]

public = APIRouter(tags=["auth"])
router = APIRouter(tags=["auth"], route_class=NameRoute)


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


@public.post("/setup", status_code=status.HTTP_201_CREATED)
async def setup(
    body: schemas.SetupIn,
    request: Request,
    node: NodeSettings = Depends(settings),
) -> dict[str, int]:
    """Create the Owner with the one-time setup token written at first start. Works once."""
    database = _database(request)
    password_hash = await database.hash(hash_password, body.password)
    owner = await database.run(partial(
        service.complete_setup, setup_token=body.setup_token, email=body.email, password_hash=password_hash,
        full_name=body.full_name, state_dir=node.state_dir, client_address=client_address(request),
    ))
    await run_in_threadpool(service.remove_setup_token_file, node.state_dir)
    return {"user_id": owner.id}


@public.post("/auth/login")
async def login(
    body: schemas.LoginIn, request: Request, node: NodeSettings = Depends(settings)
) -> schemas.SessionOut:
    """Log in with email and password; returns a session token that expires.

    Attempts are limited per account and address: past ``login_max_failures`` each failure doubles the wait
    before the next try (429 with ``Retry-After``). Any failure answers 401 "invalid email or password"."""
    database = _database(request)
    address = client_address(request)
    attempt = await database.run(partial(service.begin_login, email=body.email, client_address=address,
                                         settings=node))
    password_ok = await database.hash(verify_password, attempt.password_hash, body.password)
    opened = await database.run(partial(service.finish_login, email=body.email, attempt=attempt,
                                        password_ok=password_ok, client_address=address, settings=node))
    if opened is None:
        raise Unauthorized(service.LOGIN_FAILED)
    token, secret = opened
    assert token.expires_at is not None
    return schemas.SessionOut(token=secret, expires_at=token.expires_at, user_id=token.user_id)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: DB, actor: Actor = Depends(Requires())) -> None:
    """Revoke the token used for this request."""
    service.logout(session, actor=actor)


@router.put("/users/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: schemas.PasswordChangeIn,
    request: Request,
    session: DB,
    actor: Actor = Depends(Requires()),
) -> None:
    """Change your own password; every other token of yours (sessions and API tokens) is revoked."""
    database = _database(request)
    seen_hash = actor.user.password_hash
    async with released_session(request):  # argon2 outside the transaction
        current_ok = await database.hash(verify_password, seen_hash, body.current_password)
        new_hash = await database.hash(hash_password, body.new_password) if current_ok else ""
    await run_in_threadpool(partial(service.change_password, session, actor=actor, current_ok=current_ok,
                                    seen_hash=seen_hash, new_password_hash=new_hash))


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(
    body: schemas.TokenCreateIn,
    session: DB,
    actor: Actor = Depends(Requires()),
) -> schemas.TokenCreatedOut:
    """Create a named API token for scripts and CI. The secret is returned once."""
    token, secret = service.create_api_token(
        session, actor=actor, name=body.name, expires_in_days=body.expires_in_days
    )
    return schemas.TokenCreatedOut(**schemas.TokenOut.model_validate(token).model_dump(), token=secret)


@router.get("/tokens")
def list_tokens(
    session: DB, actor: Actor = Depends(Requires())
) -> list[schemas.TokenOut]:
    """Your named API tokens (never their secrets)."""
    return [schemas.TokenOut.model_validate(t) for t in service.list_api_tokens(session, actor=actor)]


@router.delete("/tokens/{ref}")
def revoke_token(
    ref: TokenRef, session: DB, actor: Actor = Depends(Requires())
) -> schemas.TokenOut:
    """Revoke one of your API tokens, by id or name."""
    return schemas.TokenOut.model_validate(service.revoke_api_token(session, actor=actor, ref=ref))


ManageUsers = Requires(Capability.manage_users)


@router.get("/users/{ref}/tokens")
def list_user_tokens(
    ref: UserRefPath, session: DB,
    active: bool = Query(False, description="only tokens that are neither revoked nor expired"),
    actor: Actor = Depends(ManageUsers),
) -> list[schemas.TokenOut]:
    """Every token of a user, sessions and API tokens (never their secrets)."""
    tokens = service.list_user_tokens(session, actor=actor, ref=ref, active_only=active)
    return [schemas.TokenOut.model_validate(t) for t in tokens]


@router.delete("/users/{ref}/tokens/{token_ref}")
def revoke_user_token(
    ref: UserRefPath, token_ref: TokenRef, session: DB, actor: Actor = Depends(ManageUsers)
) -> schemas.TokenOut:
    """Revoke one token of a user, by id (or an API token's name)."""
    return schemas.TokenOut.model_validate(
        service.revoke_user_token(session, actor=actor, ref=ref, token_ref=token_ref))


@router.delete("/users/{ref}/tokens")
def revoke_user_tokens(ref: UserRefPath, session: DB, actor: Actor = Depends(ManageUsers)) -> dict[str, int]:
    """Revoke every token of a user (sessions and API tokens): they must log in again."""
    return {"revoked": service.revoke_user_tokens(session, actor=actor, ref=ref)}
