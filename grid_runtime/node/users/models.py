from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column, relationship

from grid_runtime.core.accounts.models import UserColumns
from grid_runtime.core.database import Base, utcnow
from grid_runtime.node.roles.models import Role


class User(UserColumns, Base):
    __tablename__ = "users"

    budget_epsilon: Mapped[float] = mapped_column(default=0.0)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    role: Mapped[Role] = relationship(lazy="joined")
