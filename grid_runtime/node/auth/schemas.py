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


class PasswordChangeIn(Schema):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


class TokenCreateIn(Schema):
    name: Name
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(Out):
    id: int
    kind: str = Field(description="session (from login) or api (named API token)")
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="the secret; shown only in this response")
