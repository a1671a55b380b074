"""Alembic's environment for the Node's database."""

from __future__ import annotations

from grid_runtime.core.database import Base, run_migrations
from grid_runtime.node import models  # noqa: F401  (registers every table on Base.metadata)

run_migrations(Base.metadata)
