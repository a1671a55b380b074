from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class Tensor(Base):
    __tablename__ = "tensors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    shape: Mapped[list[int]] = mapped_column(default=list)
    dtype: Mapped[str] = mapped_column(String(16), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    visibility: Mapped[str] = mapped_column(String(8), index=True)  # core.levels.Visibility
    object_key: Mapped[str] = mapped_column(String(255), unique=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TensorTag(Base):
    __tablename__ = "tensor_tags"

    tensor_id: Mapped[int] = mapped_column(ForeignKey("tensors.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
