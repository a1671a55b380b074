from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status

from grid_runtime.core.database import transaction
from grid_runtime.core.errors import Unauthorized
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.auth import schemas, service
from grid_runtime.node.deps import DB, Actor, Requires, client_address, settings

public = APIRouter(tags=["auth"])
router = APIRouter(tags=["auth"])


@public.post("/setup", status_code=status.HTTP_201_CREATED)
def setup(
    body: schemas.SetupIn,
    request: Request,
    session: DB,
    node: NodeSettings = Depends(settings),
) -> dict[str, int]:
    """Create the Owner with the one-time setup token written at first start. Works once."""
    owner = service.complete_setup(
        session, setup_token=body.setup_token, email=body.email, password=body.password,
        full_name=body.full_name, state_dir=node.state_dir, client_address=client_address(request),
    )
    return {"user_id": owner.id}


@public.post("/auth/login")
def login(
    body: schemas.LoginIn, request: Request, node: NodeSettings = Depends(settings)
) -> schemas.SessionOut:
    """Log in with email and password; returns a session token that expires."""
    address = client_address(request)
    factory = request.app.state.sessions
    try:
        with transaction(factory) as session:
            token, secret = service.login(
                session, email=body.email, password=body.password, client_address=address, settings=node
            )
    except Unauthorized:
        # After the login transaction has rolled back: a failure must be remembered all the same.
        service.record_login_failure(factory, email=body.email, client_address=address)
        raise
    assert token.expires_at is not None
    return schemas.SessionOut(token=secret, expires_at=token.expires_at, user_id=token.user_id)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(session: DB, actor: Actor = Depends(Requires())) -> None:
    """Revoke the token used for this request."""
    service.logout(session, actor=actor)


@router.put("/users/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    body: schemas.PasswordChangeIn,
    session: DB,
    actor: Actor = Depends(Requires()),
) -> None:
    """Change your own password; your other sessions are logged out."""
    service.change_password(
        session, actor=actor, current_password=body.current_password, new_password=body.new_password
    )


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
    ref: str, session: DB, actor: Actor = Depends(Requires())
) -> schemas.TokenOut:
    """Revoke one of your API tokens, by id or name."""
    return schemas.TokenOut.model_validate(service.revoke_api_token(session, actor=actor, ref=ref))
