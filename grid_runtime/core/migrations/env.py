from __future__ import annotations

from alembic import context

from grid_runtime.core.database import Base, create_database_engine, sqlite_foreign_keys_off
from grid_runtime.node import models  # noqa: F401  (registers every table on Base.metadata)

config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave alone what migrations create outside the ORM (full-text search tables and indexes)."""
    prefixes = tuple(target_metadata.info.get("unmanaged_prefixes", ()))
    return not (reflected and compare_to is None and name is not None and prefixes and name.startswith(prefixes))


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_database_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn, sqlite_foreign_keys_off(conn):
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True,
                              include_object=include_object)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
