"""Alembic's environment for the Network's database (its own tables and version table)."""

from __future__ import annotations

from grid_runtime.core.database import run_migrations
from grid_runtime.network import models  # noqa: F401  (registers every table)
from grid_runtime.network.database import NetworkBase

run_migrations(NetworkBase.metadata)
