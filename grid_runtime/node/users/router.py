from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import ALL, Capability
from grid_runtime.core.schemas import Page, PageParams
from grid_runtime.core.security import hash_password
from grid_runtime.node.deps import DB, Actor, Requires, in_thread, released_session
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.users import schemas, service
from grid_runtime.node.users.models import User

router = APIRouter(prefix="/users", tags=["users"], route_class=NameRoute)


def _out(session: Session, users: list[User]) -> list[schemas.UserOut]:
    groups = service.group_names(session, [u.id for u in users])
    return [schemas.UserOut.of(u, groups.get(u.id, [])) for u in users]


def _one(session: Session, user: User) -> schemas.UserOut:
    return _out(session, [user])[0]


@router.get("/me")
async def me(session: DB, actor: Actor = Depends(Requires())) -> schemas.UserOut:
    """Your own account: role, capabilities, budget and groups."""
    return await in_thread(session, partial(_one, session, actor.user))


@router.get("")
def list_users(
    session: DB,
    page: Annotated[PageParams, Query()],
    role: Annotated[str | None, Query(max_length=64, description="role id or name")] = None,
    disabled: bool | None = None,
    q: Annotated[str | None, Query(max_length=254, description="substring of the email or full name")] = None,
    group: Annotated[str | None, Query(max_length=64, description="group id or name")] = None,
    actor: Actor = Depends(Requires(Capability.manage_users)),
) -> Page[schemas.UserOut]:
    """List users, filtered by role, disabled flag, group or a substring of email or name."""
    users, total = service.list_users(session, role=role, disabled=disabled, q=q, group=group,
                                      limit=page.limit, offset=page.offset)
    return Page(items=_out(session, users), total=total, limit=page.limit, offset=page.offset)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(
    body: schemas.UserCreateIn, request: Request, session: DB,
    actor: Actor = Depends(Requires(Capability.manage_users)),
) -> schemas.UserOut:
    """Create a user with a role you hold every capability of (a budget also needs manage_budgets)."""
    async with released_session(request):  # argon2 outside the transaction
        password_hash = await request.app.state.database.hash(hash_password, body.password)

    def create() -> schemas.UserOut:
        user = service.create_user(session, actor=actor, email=body.email, password_hash=password_hash,
                                   full_name=body.full_name, role=body.role, budget_epsilon=body.budget_epsilon)
        return _one(session, user)

    return await run_in_threadpool(create)


@router.get("/{ref}")
def get_user(ref: str, session: DB, actor: Actor = Depends(Requires())) -> schemas.UserOut:
    """One user by id or email: needs manage_users, except for your own account."""
    return _one(session, service.get_user(session, actor=actor, ref=ref))


@router.patch("/{ref}")
async def update_user(
    ref: str, body: schemas.UserUpdateIn, session: DB, actor: Actor = Depends(Requires(Capability.manage_users))
) -> schemas.UserOut:
    """Change a user's email, full name, role or disabled flag (disabling revokes every token of theirs)."""

    def update() -> schemas.UserOut:
        user = service.update_user(session, actor=actor, ref=ref, email=body.email, full_name=body.full_name,
                                   role=body.role, disabled=body.disabled)
        return _one(session, user)

    return await in_thread(session, update)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(ref: str, session: DB, actor: Actor = Depends(Requires(Capability.manage_users))) -> None:
    """Delete a user, their tokens and their group memberships."""
    service.delete_user(session, actor=actor, ref=ref)


@router.put("/{ref}/password", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    ref: str, body: schemas.PasswordResetIn, request: Request, session: DB,
    actor: Actor = Depends(Requires(Capability.manage_users)),
) -> None:
    """Reset another user's password; every token of theirs (sessions and API tokens) is revoked."""
    await run_in_threadpool(partial(service.check_may_reset, session, actor=actor, ref=ref))
    async with released_session(request):  # argon2 outside the transaction
        password_hash = await request.app.state.database.hash(hash_password, body.new_password)
    await run_in_threadpool(partial(service.reset_password, session, actor=actor, ref=ref,
                                    new_password_hash=password_hash))


@router.put("/{ref}/budget")
def set_budget(
    ref: str, body: schemas.BudgetIn, session: DB, actor: Actor = Depends(Requires(Capability.manage_budgets))
) -> schemas.UserOut:
    """Set another user's privacy budget ε: not your own, nor one of a user whose role outranks yours."""
    from grid_runtime.node.budget import service as budget

    return _one(session, budget.set_user_budget(session, actor=actor, user=service.resolve(session, ref),
                                                epsilon=body.epsilon))


@router.post("/{ref}/transfer-ownership")
def transfer_ownership(ref: str, session: DB, actor: Actor = Depends(Requires(*ALL))) -> schemas.UserOut:
    """Owner only: make this user the Owner; you become an Administrator."""
    return _one(session, service.transfer_ownership(session, actor=actor, ref=ref))
