from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from grid_runtime.core.levels import Level
from grid_runtime.core.schemas import Id, Out, Schema

SubjectType = Literal["user", "group"]
TargetType = Literal["tensor", "dataset"]


class GrantIn(Schema):
    subject_type: SubjectType
    subject: str | int = Field(description="a user's id or email, or a group's id or name")
    target_type: TargetType
    target_id: Id
    level: Level = Field(description="search, compute, download, or deny (nothing beyond search)")


class GrantOut(Out):
    id: int
    subject_type: SubjectType
    subject_id: int
    subject_name: str | None = Field(None, description="the user's email or the group's name")
    target_type: TargetType
    target_id: int
    level: Level
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class ExplainOut(Out):
    user_id: int
    target_type: TargetType
    target_id: int
    level: Level
    rule: str = Field(description="user_on_tensor | user_on_dataset | group_on_tensor | group_on_dataset | "
                                  "visibility")
    grant_id: int | None
    explanation: str
