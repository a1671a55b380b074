"""API shapes for tensors: what a tensor looks like to callers, edits, search parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.schemas import Description, Name, Out, Schema


def _normalised(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Tag = Annotated[str, BeforeValidator(_normalised), StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
"""Lower-case letters, digits and ``_ . : -``; starts with a letter or digit; at most 64 characters."""

Role = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""A tensor's role in a dataset, such as ``features`` or ``labels``."""

SORTS = ("created_at", "-created_at", "name", "-name", "size", "-size")
SortKey = Literal["created_at", "-created_at", "name", "-name", "size", "-size"]


class TensorOut(Out):
    """A tensor's metadata. What is computed from its values (``sha256``, ``size_bytes``) is null unless the
    caller may download it: a user at ``search`` or ``compute`` level sees only what its uploader declared."""

    id: int
    name: str
    description: str
    shape: list[int]
    dtype: str
    size_bytes: int | None = Field(
        None, description="size of the stored safetensors file; only for callers who may download the tensor")
    sha256: str | None = Field(
        None, description="sha256 of the stored safetensors file, as downloaded; only for callers who may "
                          "download the tensor (a content hash is an oracle on the values: with all rows but one "
                          "known, hashing each candidate gives the last one away)")
    visibility: Visibility
    tags: list[str] = Field(default_factory=list)
    columns: list[str] | None = Field(None, description="column names, for tensors made from a CSV")
    uploader_id: int | None
    created_at: datetime
    level: Level | None = Field(None, description="the caller's effective level on this tensor")


class TensorUpdateIn(Schema):
    name: Name | None = None
    description: Description | None = None
    visibility: Visibility | None = None


__all__ = ["SORTS", "Description", "Name", "Role", "SortKey", "Tag", "TensorOut", "TensorUpdateIn"]
