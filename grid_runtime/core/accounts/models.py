"""The columns the Node's and the Network's ``roles``, ``users``, ``tokens`` and ``setup_tokens`` tables share, as
mixins: each service maps them on its own declarative base (its own metadata and migrations) and adds its own
columns, so neither service's schema depends on the other's. A foreign key is a ``declared_attr``: it names the
table of the base the mixin is mapped on."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from grid_runtime.core.database import utcnow

FIRST, LAST = -1, 1
"""``sort_order`` of shared columns that come before (after) the service's own, where its tables have them."""


class Columns:
    """Shared columns; for the type checker, a class built from its columns as keywords (as the declarative base
    it is mapped on builds it)."""

    if TYPE_CHECKING:
        def __init__(self, **columns: Any) -> None: ...


class RoleColumns(Columns):
    """A role: a named set of capabilities; a preset role is seeded and refreshed at each start."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    capabilities: Mapped[list[str]] = mapped_column(default=list)
    preset: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserColumns(Columns):
    """A person: email (unique, lower-case), argon2id password hash, one role."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=FIRST)
    email: Mapped[str] = mapped_column(String(254), unique=True, sort_order=FIRST)
    full_name: Mapped[str] = mapped_column(String(128), default="", sort_order=FIRST)
    password_hash: Mapped[str] = mapped_column(String(255), sort_order=FIRST)

    @declared_attr
    def role_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), index=True, sort_order=FIRST)


class TokenColumns(Columns):
    """A session (from login; expires) or a named API token (expires only if asked) of a user. Only the SHA-256
    of the secret is stored."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=FIRST)
    name: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    @declared_attr
    def user_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, sort_order=FIRST)


class SetupTokenColumns(Columns):
    """The one-time token that creates the Owner (only its SHA-256 is stored); consumed by the first setup."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=FIRST)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, sort_order=FIRST)
    used_at: Mapped[datetime | None] = mapped_column(sort_order=LAST)
