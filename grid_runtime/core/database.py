"""Database engine, sessions and the declarative base. Migrations are applied at start (Alembic)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, Integer, MetaData, Table, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Every table with an integer ``id`` primary key gets ``sqlite_autoincrement``: SQLite never hands out
    an id again once it was used (without it, deleting the newest row frees its id for the next insert, and
    a pending request for a deleted tensor 11 would name the next upload). PostgreSQL sequences never
    reuse ids anyway. Migration 0007 rebuilds the existing SQLite tables the same way."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON, list[int]: JSON, list[dict[str, Any]]: JSON,
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table) and has_integer_id(table):
            table.dialect_options["sqlite"]["autoincrement"] = True


def has_integer_id(table: Table) -> bool:
    """A single-column integer primary key named ``id`` (what SQLite's AUTOINCREMENT applies to)."""
    pk = list(table.primary_key.columns)
    return len(pk) == 1 and pk[0].name == "id" and isinstance(pk[0].type, Integer)


READ_SLOTS = 4
"""SQLite: read transactions open at once (WAL readers never wait for the writer, nor for each other)."""
POOL_SIZE = 20
"""PostgreSQL: connections in the pool (requests, the job runner, background work)."""
POSTGRES_REQUEST_SLOTS = 6
"""PostgreSQL: request transactions open at once (reads and writes). The Node is one Python process: more
transactions in flight than a few only make threads fight over the interpreter and stretch every request."""
_READ_ONLY = "grid_read_only"


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``.

    SQLite gets WAL, foreign keys, and writers serialized by ``BEGIN IMMEDIATE``; a connection from
    ``read_engine(engine)`` begins a plain (deferred) transaction instead, a WAL snapshot that neither
    waits for the writer nor blocks it. The database file is created owner-only (0600).
    """
    if url.startswith("sqlite"):
        pool: dict[str, Any] = {}
        if _create_private_sqlite_file(url):  # a file: enough connections for the readers and the writer
            pool = {"pool_size": READ_SLOTS + 6, "max_overflow": 8}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy, not pysqlite, emit BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(_READ_ONLY):
                conn.exec_driver_sql("BEGIN")
                return
            # Serialize writers from the first statement: read-then-write transactions (budget checks,
            # unique checks) can never interleave, which SQLite's default deferred BEGIN would allow.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=4)


def _create_private_sqlite_file(url: str) -> bool:
    """Create the SQLite file (and its WAL and shared-memory files) 0600 before SQLite makes them 0644.

    False for an in-memory database (nothing to create)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if not file.exists():
            os.close(os.open(file, os.O_WRONLY | os.O_CREAT, 0o600))
        else:
            file.chmod(0o600)
    return True


def read_engine(engine: Engine) -> Engine:
    """The same engine and pool, whose transactions begin as SQLite readers (plain ``BEGIN``)."""
    return engine.execution_options(**{_READ_ONLY: True})


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration up to head on this engine's database."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn, sqlite_foreign_keys_off(conn), conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """On SQLite, foreign keys off while migrations run (before their transaction begins: the pragma is a
    no-op inside one). A table rebuilt in batch mode is dropped and re-created; with foreign keys on, the
    drop would cascade to every row that refers to it. Checked afterwards: a violation fails the start."""
    if conn.dialect.name != "sqlite" or conn.in_transaction():
        yield
        return
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        violations = raw.execute("PRAGMA foreign_key_check").fetchall()
        if violations:
            raise RuntimeError(f"migrations left rows that break foreign keys: {violations[:10]}")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
