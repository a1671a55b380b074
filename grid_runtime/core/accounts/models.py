"""The columns the Node's and the Network's ``roles`` and ``users`` tables share, as mixins: each service maps
them on its own declarative base (its own metadata and migrations), so neither table's schema depends on the
other's. A foreign key is a ``declared_attr``: it names the ``roles`` table of the base the mixin is mapped on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from grid_runtime.core.database import utcnow


class RoleColumns:
    """A role: a named set of capabilities; a preset role is seeded and refreshed at each start."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    capabilities: Mapped[list[str]] = mapped_column(default=list)
    preset: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


FIRST, LAST = -1, 1
"""``sort_order`` of shared columns that come before (after) the service's own, where its table has them."""


class UserColumns:
    """A person: email (unique, lower-case), argon2id password hash, one role."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=FIRST)
    email: Mapped[str] = mapped_column(String(254), unique=True, sort_order=FIRST)
    full_name: Mapped[str] = mapped_column(String(128), default="", sort_order=FIRST)
    password_hash: Mapped[str] = mapped_column(String(255), sort_order=FIRST)

    @declared_attr
    def role_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), index=True, sort_order=FIRST)


class SetupTokenColumns:
    """The one-time token that creates the Owner (only its SHA-256 is stored); consumed by the first setup."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=FIRST)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, sort_order=FIRST)
    used_at: Mapped[datetime | None] = mapped_column(sort_order=LAST)
