"""API shapes for datasets: named collections of tensors with owner-declared per-column bounds."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.schemas import Description, Id, Out, Schema
from grid_runtime.node.tensors.schemas import Role, Tag


def _not_all_digits(value: str) -> str:
    if value.isdigit():
        raise ValueError("a dataset name cannot be all digits (it would read as an id)")
    return value


DatasetName = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"),
                        AfterValidator(_not_all_digits)]
"""Letters, digits and ``_ . -``, not all digits (a dataset is referred to by id or by name)."""

Bound = float | list[float]


class ColumnBounds(Schema):
    """Bounds for one member: a number for every column (or one number for all), ``lower <= upper``.

    Declared by the owner from what they know of the data's domain; never computed from the data, because
    differentially private statistics are only private if the bounds do not depend on it."""

    lower: Bound
    upper: Bound

    @model_validator(mode="after")
    def _ordered(self) -> ColumnBounds:
        lower = self.lower if isinstance(self.lower, list) else [self.lower]
        upper = self.upper if isinstance(self.upper, list) else [self.upper]
        if isinstance(self.lower, list) and isinstance(self.upper, list) and len(lower) != len(upper):
            raise ValueError(f"lower has {len(lower)} values and upper {len(upper)}")
        if not all(math.isfinite(v) for v in lower + upper):
            raise ValueError("bounds must be finite numbers")
        pairs = zip(lower, upper, strict=True) if len(lower) == len(upper) else (
            (lo, hi) for lo in lower for hi in upper)
        if any(lo > hi for lo, hi in pairs):
            raise ValueError("every lower bound must be at most its upper bound")
        return self


LabelClasses = Annotated[int, Field(ge=1, le=1_000_000, description=(
    "how many classes the labels take (0 .. n-1), declared by the owner: a classifier's output must be at least "
    "this wide, checked when a job is admitted"))]


class DatasetCreateIn(Schema):
    name: DatasetName
    description: Description = ""
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    visibility: Visibility = Visibility.private
    label_classes: LabelClasses | None = None
    one_row_per_person: bool = Field(False, description="each row is a different person (declared by the owner); "
                                     "the officer's plain reading of ε then speaks of a person, not a row")
    members: dict[Role, Id] = Field(default_factory=dict, description="role -> tensor id, e.g. {'features': 3}")
    bounds: dict[Role, ColumnBounds] = Field(default_factory=dict, description="role -> declared bounds")


class DatasetUpdateIn(Schema):
    name: DatasetName | None = None
    description: Description | None = None
    tags: list[Tag] | None = Field(None, max_length=32)
    visibility: Visibility | None = None
    label_classes: LabelClasses | None = None
    clear_label_classes: bool = False
    one_row_per_person: bool | None = None


class MemberIn(Schema):
    tensor_id: Id


class MemberOut(Out):
    role: str
    tensor_id: int
    name: str
    dtype: str
    shape: list[int]


class DatasetOut(Out):
    id: int
    name: str
    description: str
    tags: list[str]
    visibility: Visibility
    bounds: dict[str, ColumnBounds]
    label_classes: int | None = None
    one_row_per_person: bool = False
    owner_id: int | None
    created_at: datetime
    members: list[MemberOut] = Field(default_factory=list)
    level: Level | None = Field(None, description="the caller's effective level on this dataset")
