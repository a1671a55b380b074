"""API shapes for users. ``UserOut`` is built from the row plus the names of the user's groups."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from grid_runtime.core.schemas import Email, Out, Password, Schema
from grid_runtime.node.roles.schemas import RoleBrief, RoleRef
from grid_runtime.node.users.models import User

FullName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]
Epsilon = Annotated[float, Field(ge=0, allow_inf_nan=False, description="privacy budget ε")]


class UserCreateIn(Schema):
    email: Email
    password: Password
    full_name: FullName = ""
    role: RoleRef | None = Field(None, description='id or name; "Data Scientist" when omitted')
    budget_epsilon: Epsilon | None = Field(None, description="needs manage_budgets as well")


class UserUpdateIn(Schema):
    email: Email | None = None
    full_name: FullName | None = None
    role: RoleRef | None = Field(None, description="id or name")
    disabled: bool | None = None


class PasswordResetIn(Schema):
    new_password: Password


class BudgetIn(Schema):
    epsilon: Epsilon


class UserOut(Out):
    id: int
    email: str
    full_name: str
    role: RoleBrief
    capabilities: list[str]
    budget_epsilon: float
    disabled: bool
    created_at: datetime
    groups: list[str]

    @classmethod
    def of(cls, user: User, groups: list[str]) -> UserOut:
        return cls(
            id=user.id, email=user.email, full_name=user.full_name, role=RoleBrief.model_validate(user.role),
            capabilities=sorted(user.role.capabilities), budget_epsilon=user.budget_epsilon,
            disabled=user.disabled, created_at=user.created_at, groups=groups,
        )
