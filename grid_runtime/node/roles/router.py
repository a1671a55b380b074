from __future__ import annotations

from fastapi import APIRouter, Depends, status
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.node.deps import DB, Actor, Requires
from grid_runtime.node.roles import schemas, service
from grid_runtime.node.roles.models import Role
from grid_runtime.node.routing import NameRoute

router = APIRouter(prefix="/roles", tags=["roles"], route_class=NameRoute)


def _out(session: Session, roles: list[Role]) -> list[schemas.RoleOut]:
    counts = service.user_counts(session, [r.id for r in roles])
    return [
        schemas.RoleOut(id=r.id, name=r.name, description=r.description, capabilities=sorted(r.capabilities),
                        preset=r.preset, user_count=counts.get(r.id, 0))
        for r in roles
    ]


@router.get("")
def list_roles(session: DB, actor: Actor = Depends(Requires())) -> list[schemas.RoleOut]:
    """Every role, preset and custom, with its capabilities and how many users hold it."""
    return _out(session, service.list_roles(session))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_role(
    body: schemas.RoleCreateIn, session: DB, actor: Actor = Depends(Requires(Capability.edit_roles))
) -> schemas.RoleOut:
    """Create a custom role from capabilities you hold yourself."""
    role = service.create_role(session, actor=actor, name=body.name, description=body.description,
                               capabilities=body.capabilities)
    return _out(session, [role])[0]


@router.get("/{ref}")
def get_role(ref: str, session: DB, actor: Actor = Depends(Requires())) -> schemas.RoleOut:
    """One role, by id or name."""
    return _out(session, [service.resolve(session, ref)])[0]


@router.patch("/{ref}")
def update_role(
    ref: str, body: schemas.RoleUpdateIn, session: DB, actor: Actor = Depends(Requires(Capability.edit_roles))
) -> schemas.RoleOut:
    """Rename, describe or change the capabilities of a custom role (never a preset one)."""
    role = service.update_role(session, actor=actor, ref=ref, name=body.name, description=body.description,
                               capabilities=body.capabilities)
    return _out(session, [role])[0]


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_role(ref: str, session: DB, actor: Actor = Depends(Requires(Capability.edit_roles))) -> None:
    """Delete a custom role that no user holds."""
    service.delete_role(session, actor=actor, ref=ref)
