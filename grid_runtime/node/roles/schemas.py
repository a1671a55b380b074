"""API shapes for roles: a named set of capabilities, referable by id or name."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt

from grid_runtime.core.accounts import schemas as accounts
from grid_runtime.core.capabilities import Capability
from grid_runtime.core.schemas import Description, Name, Out, Schema


def not_all_digits(value: str) -> str:
    # Refs are "an id if all digits, otherwise a name": a digit-only name could never be referred to.
    if value.isdigit():
        raise ValueError("a name may not be all digits (it would read as an id)")
    return value


RefName = Annotated[Name, AfterValidator(not_all_digits),
                    Field(json_schema_extra={"not": {"pattern": "^[0-9]+$"}})]
"""A name that can stand in for an id in a ref: 1..64 characters, not all digits."""

RoleRef = StrictInt | Name
"""A role named in a request body: its id or its name."""


class RoleCreateIn(Schema):
    name: RefName
    description: Description = ""
    capabilities: list[Capability] = Field(default_factory=list)


class RoleUpdateIn(Schema):
    name: RefName | None = None
    description: Description | None = None
    capabilities: list[Capability] | None = None


class RoleBrief(Out):
    id: int
    name: str


class RoleOut(accounts.RoleOut):
    user_count: int
