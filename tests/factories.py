"""Factories for route tests: users with a role, and their auth headers, made through the real app."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import select

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.security import hash_password, new_token
from grid_runtime.node.auth.models import API, Token
from grid_runtime.node.roles.models import Role
from grid_runtime.node.users.models import User

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


@dataclass
class MadeUser:
    id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    """Writes straight to the app's database (the code under test is the API, not the factory)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.sessions = client.app.state.sessions  # type: ignore[attr-defined]

    def role(self, name: str, capabilities: set[Capability] | frozenset[Capability] = frozenset()) -> int:
        with self.sessions.begin() as session:
            role = session.scalar(select(Role).where(Role.name == name))
            if role is None:
                role = Role(name=name, capabilities=sorted(capabilities))
                session.add(role)
                session.flush()
            return role.id

    def user(
        self,
        role: str = "Data Scientist",
        *,
        email: str | None = None,
        capabilities: set[Capability] | None = None,
        budget: float = 0.0,
    ) -> MadeUser:
        """A user with ``role`` (preset name), or with a custom role holding exactly ``capabilities``."""
        n = next(_seq)
        email = email or f"user{n}@example.com"
        if capabilities is not None:
            role = f"custom-{n}"
            self.role(role, capabilities)
        secret, digest = new_token("gapi")
        with self.sessions.begin() as session:
            role_row = session.scalar(select(Role).where(Role.name == role))
            assert role_row is not None, f"no role {role!r}"
            user = User(email=email, password_hash=hash_password(PASSWORD), role=role_row,
                        budget_epsilon=budget)
            session.add(user)
            session.flush()
            session.add(Token(user_id=user.id, kind=API, name="factory", token_hash=digest))
            return MadeUser(id=user.id, email=email, token=secret)

    def owner(self) -> MadeUser:
        return self.user("Owner")
