from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class Grant(Base):
    """A level (or a deny) for one subject (a user or a group) on one target (a tensor or a dataset).

    One grant per subject and target: granting again replaces the level. Rows never hold a NULL pair in a
    unique constraint that matters (NULLs are distinct in both SQLite and PostgreSQL), so the four unique
    constraints below each bind exactly one subject/target combination.
    """

    __tablename__ = "grants"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (group_id IS NULL)", name="one_subject"),
        CheckConstraint("(tensor_id IS NULL) <> (dataset_id IS NULL)", name="one_target"),
        CheckConstraint("level IN ('search', 'compute', 'download', 'deny')", name="level"),
        UniqueConstraint("user_id", "tensor_id", name="uq_grants_user_tensor"),
        UniqueConstraint("user_id", "dataset_id", name="uq_grants_user_dataset"),
        UniqueConstraint("group_id", "tensor_id", name="uq_grants_group_tensor"),
        UniqueConstraint("group_id", "dataset_id", name="uq_grants_group_dataset"),
        Index("ix_grants_tensor_id", "tensor_id"),
        Index("ix_grants_dataset_id", "dataset_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    tensor_id: Mapped[int | None] = mapped_column(ForeignKey("tensors.id", ondelete="CASCADE"))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8))  # core.levels.Level
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def subject_type(self) -> str:
        return "user" if self.user_id is not None else "group"

    @property
    def subject_id(self) -> int:
        subject = self.user_id if self.user_id is not None else self.group_id
        assert subject is not None
        return subject

    @property
    def target_type(self) -> str:
        return "tensor" if self.tensor_id is not None else "dataset"

    @property
    def target_id(self) -> int:
        target = self.tensor_id if self.tensor_id is not None else self.dataset_id
        assert target is not None
        return target
