from __future__ import annotations

from datetime import datetime

from pydantic import Field

from grid_runtime.core.accounts.schemas import LoginIn, SessionOut, SetupIn, TokenCreateIn  # noqa: F401  (re-exported)
from grid_runtime.core.schemas import Out, Password, Schema


class PasswordChangeIn(Schema):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: Password


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
