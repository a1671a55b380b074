"""The Network's own declarative base and schema: its tables, its migrations, built at head on an empty database."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Engine, MetaData
from sqlalchemy.orm import DeclarativeBase

from grid_runtime.core.database import NAMING, UTCDateTime, never_reuse_ids, stamp, upgrade

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class NetworkBase(DeclarativeBase):
    """The Network's tables, on a metadata of their own (never the Node's ``Base``)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON, list[int]: JSON}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        never_reuse_ids(cls)


def create_schema(conn: Connection, revision: str) -> None:
    """An empty database: every table from the models, stamped at ``revision``."""
    from grid_runtime.network import models  # noqa: F401  (registers every table)

    NetworkBase.metadata.create_all(conn)
    stamp(conn, revision)


def upgrade_network(engine: Engine) -> None:
    """Bring the Network's database to head (``core.database.upgrade`` with the Network's schema)."""
    upgrade(engine, migrations=MIGRATIONS_DIR, create=create_schema)
