"""Shapes shared by every domain's API: pagination, ids and field types with their limits.

Ids: every id a caller sends (in a path, a query or a body) is an ``Id``, bounded to the id columns' range
(PostgreSQL's INTEGER, 2**31 - 1), so a larger number is a 422 and never reaches the database (where
PostgreSQL overflows). A *ref*
(``/users/{ref}``) is an id when it is ASCII digits and a name otherwise: ``as_id`` decides, once for every
domain (``str.isdigit()`` is true for "²", which ``int()`` refuses).
"""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from grid_runtime.core.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

T = TypeVar("T")

MAX_ID = 2**31 - 1
"""The largest id any table holds on both databases (id columns are INTEGER: 32 bits on PostgreSQL)."""

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="a row id")]
"""An id sent by a caller: 1 .. 2**31-1."""

_ASCII_DIGITS = re.compile(r"^[0-9]+$")


def as_id(ref: str | int) -> int | None:
    """The row id ``ref`` names, or ``None`` when it is a name.

    An id is an int or a string of ASCII digits (surrounding spaces ignored). One outside the database's range
    names no row: it becomes 0, which every lookup answers with "not found" instead of an overflow.
    """
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        value = ref
    else:
        text = ref.strip()
        if not _ASCII_DIGITS.match(text):
            return None
        value = int(text) if len(text) <= 19 else 0
    return value if 1 <= value <= MAX_ID else 0

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _email(value: str) -> str:
    # Deliberately light: one '@', no spaces. Deliverability is the owner's business, and local
    # deployments use addresses such as owner@localhost that stricter validators refuse.
    if not _EMAIL.match(value):
        raise ValueError("not an email address (expected name@domain)")
    return value.lower()


Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(max_length=500)]


class Schema(BaseModel):
    """Base for request bodies: unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Base for responses, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class PageParams(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_ID)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
