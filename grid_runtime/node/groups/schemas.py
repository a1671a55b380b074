"""API shapes for groups of users."""

from __future__ import annotations

from datetime import datetime

from grid_runtime.core.schemas import Description, Out, Schema
from grid_runtime.node.roles.schemas import RefName


class GroupCreateIn(Schema):
    name: RefName
    description: Description = ""


class GroupUpdateIn(Schema):
    name: RefName | None = None
    description: Description | None = None


class MemberOut(Out):
    id: int
    email: str


class GroupOut(Out):
    id: int
    name: str
    description: str
    created_at: datetime
    member_count: int


class GroupDetailOut(GroupOut):
    members: list[MemberOut]
