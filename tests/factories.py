"""Factories for route tests: users with a role, and their auth headers, made through the real app."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import Base
from grid_runtime.core.security import hash_password, new_token
from grid_runtime.node import models as _every_table  # noqa: F401  (snapshot() covers every table)
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.auth.models import API, Token
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.groups.models import Group, GroupMember
from grid_runtime.node.roles.models import Role
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


@functools.cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, computed once per test process: hashing costs ~0.3 s, and every test makes users."""
    return hash_password(PASSWORD)


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
            user = User(email=email, password_hash=password_hash(), role=role_row,
                        budget_epsilon=budget)
            session.add(user)
            session.flush()
            session.add(Token(user_id=user.id, kind=API, name="factory", token_hash=digest))
            return MadeUser(id=user.id, email=email, token=secret)

    def owner(self) -> MadeUser:
        return self.user("Owner")

    def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in through the API; the headers of the new session."""
        response = self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def audit_actions(self) -> list[str]:
        """Every audit event's action, oldest first: to check that a refused request recorded nothing."""
        with self.sessions() as session:
            return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))

    def count(self, model: type[Base]) -> int:
        """How many rows a table holds."""
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def snapshot(self) -> dict[str, list[tuple[object, ...]]]:
        """Every row of every table, to prove that a refused request changed nothing.

        Leaves out ``tokens.last_used_at``, which any authenticated request may touch.
        """
        with self.sessions() as session:
            state: dict[str, list[tuple[object, ...]]] = {}
            for table in Base.metadata.sorted_tables:
                columns = [c for c in table.columns if (table.name, c.name) != ("tokens", "last_used_at")]
                query = select(*columns).order_by(*table.primary_key.columns)
                state[table.name] = [tuple(row) for row in session.execute(query)]
            return state

    def tensor(self, name: str | None = None, *, visibility: str = "private", uploader: int | None = None) -> int:
        """A tensor row with a dummy object key and sha256 (no blob: for permission and request tests)."""
        n = next(_seq)
        with self.sessions.begin() as session:
            row = Tensor(name=name or f"tensor-{n}", description="", shape=[2, 3], ndim=2, shape_key=",2,3,",
                         dtype="float32",
                         size_bytes=24, sha256=f"{n:064x}", visibility=visibility,
                         object_key=f"factory/{n}", uploader_id=uploader)
            session.add(row)
            session.flush()
            return row.id

    def dataset(
        self, name: str | None = None, *, tensors: dict[str, int] | Sequence[int] = (), visibility: str = "private",
    ) -> int:
        """A dataset row holding ``tensors`` (role -> tensor id, or a list named ``t0``, ``t1``...)."""
        n = next(_seq)
        members = tensors if isinstance(tensors, dict) else {f"t{i}": t for i, t in enumerate(tensors)}
        with self.sessions.begin() as session:
            row = Dataset(name=name or f"dataset-{n}", visibility=visibility)
            session.add(row)
            session.flush()
            session.add_all(DatasetMember(dataset_id=row.id, role=role, tensor_id=t) for role, t in members.items())
            return row.id

    def group(self, name: str | None = None, *, members: Sequence[int] = ()) -> int:
        """A group with these user ids as members."""
        n = next(_seq)
        with self.sessions.begin() as session:
            row = Group(name=name or f"group-{n}")
            session.add(row)
            session.flush()
            session.add_all(GroupMember(group_id=row.id, user_id=u) for u in members)
            return row.id
