from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    # Per-column bounds declared by the owner, e.g. {"features": {"lower": [..], "upper": [..]}}; never read
    # from the data (differentially private statistics rely on them).
    bounds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Declared by the owner (never read from the data): how many classes the labels take (0 .. n-1), checked
    # against a classifier's output width at admission; and whether each row is a different person, which
    # lets the cost card's plain reading say "a person" instead of "a row".
    label_classes: Mapped[int | None]
    one_row_per_person: Mapped[bool] = mapped_column(default=False)
    visibility: Mapped[str] = mapped_column(String(8), default="private", index=True)  # core.levels.Visibility
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetMember(Base):
    """A tensor's place in a dataset under a role name such as ``features`` or ``labels``."""

    __tablename__ = "dataset_members"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)
    tensor_id: Mapped[int] = mapped_column(ForeignKey("tensors.id", ondelete="CASCADE"), index=True)
