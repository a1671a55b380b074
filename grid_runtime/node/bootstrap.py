"""What the Node does once at each start, after migrations: preset roles and the setup token."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import PRESET_ROLES
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.auth.service import issue_setup_token
from grid_runtime.node.roles.models import Role


def seed_preset_roles(session: Session) -> None:
    existing = {r.name: r for r in session.scalars(select(Role).where(Role.name.in_(PRESET_ROLES)))}
    for name, caps in PRESET_ROLES.items():
        role = existing.get(name) or Role(name=name)
        role.capabilities = sorted(caps)
        role.preset = True
        session.add(role)


def prepare(session: Session, settings: NodeSettings) -> None:
    seed_preset_roles(session)
    session.flush()
    issue_setup_token(session, settings.state_dir)
