"""Alembic's environment for the Network's database (its own tables and version table)."""

from __future__ import annotations

from alembic import context

from grid_runtime.core.database import create_database_engine, sqlite_foreign_keys_off
from grid_runtime.network import models  # noqa: F401  (registers every table)
from grid_runtime.network.database import NetworkBase

config = context.config
target_metadata = NetworkBase.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_database_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn, sqlite_foreign_keys_off(conn):
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
