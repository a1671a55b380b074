"""API shapes the Node and the Network share (no docstrings on the classes: they would become the OpenAPI text)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grid_runtime.core.schemas import Email, Name, Out, Password, Schema


class SetupIn(Schema):
    setup_token: str = Field(min_length=1, max_length=200)
    email: Email
    password: Password
    full_name: str = Field("", max_length=128)


class LoginIn(Schema):
    email: Email
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(Out):
    token: str
    expires_at: datetime
    user_id: int


class TokenCreateIn(Schema):
    name: Name
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class RoleOut(Out):
    # the Network's as it is; the Node's adds how many users hold the role
    id: int
    name: str
    description: str
    capabilities: list[str]
    preset: bool
