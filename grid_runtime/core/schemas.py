"""Shapes shared by every domain's API: pagination and field types with their limits."""

from __future__ import annotations

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from grid_runtime.core.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

T = TypeVar("T")

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
    offset: int = Field(0, ge=0)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
