from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.accounts.models import LAST, SetupTokenColumns, TokenColumns
from grid_runtime.core.database import Base, utcnow

SESSION = "session"
API = "api"


class Token(TokenColumns, Base):
    """A session (``kind`` session, from login) or a named API token (``kind`` api)."""

    __tablename__ = "tokens"

    kind: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(sort_order=LAST)


class LoginThrottle(Base):
    """Login attempts per account and client address (``email`` empty: every account from that address).

    An attempt is counted before its password is checked, in a row-locked update, so parallel guesses can
    never exceed the allowance; past it each attempt pushes ``blocked_until`` back exponentially. A success
    clears the account's row. Nobody can lock an account out from another address."""

    __tablename__ = "login_throttle"
    __table_args__ = (UniqueConstraint("email", "client_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    client_address: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SetupToken(SetupTokenColumns, Base):
    __tablename__ = "setup_tokens"

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
