from __future__ import annotations

from grid_runtime.core.accounts.models import RoleColumns
from grid_runtime.core.database import Base


class Role(RoleColumns, Base):
    __tablename__ = "roles"
