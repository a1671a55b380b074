from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow

# Full-text search lives beside these tables but outside the ORM: on SQLite an FTS5 table ``tensors_fts``
# (external content over name and description, kept in sync by triggers), on PostgreSQL a GIN index
# ``tensors_fts_gin`` on to_tsvector('simple', name || ' ' || description). Migration 0002 creates both;
# Alembic's comparison is told to leave objects with this prefix alone.
FULL_TEXT_PREFIX = "tensors_fts"
Base.metadata.info.setdefault("unmanaged_prefixes", set()).add(FULL_TEXT_PREFIX)


def shape_key(shape: list[int]) -> str:
    """The shape as searchable text, delimited on both sides: [60000, 784] -> ',60000,784,'."""
    return "," + "".join(f"{d}," for d in shape) if shape else ","


class Tensor(Base):
    __tablename__ = "tensors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    shape: Mapped[list[int]] = mapped_column(default=list)
    ndim: Mapped[int] = mapped_column(Integer, default=0)
    shape_key: Mapped[str] = mapped_column(String(255), index=True)  # see shape_key()
    dtype: Mapped[str] = mapped_column(String(16), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(8), index=True)  # core.levels.Visibility
    # Column names for tensors made from a CSV (one per last-axis entry); None otherwise.
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True, default=None)
    object_key: Mapped[str] = mapped_column(String(255), unique=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TensorTag(Base):
    __tablename__ = "tensor_tags"

    tensor_id: Mapped[int] = mapped_column(ForeignKey("tensors.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
