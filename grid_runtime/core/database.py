"""Database engine, sessions and the declarative base. The schema is brought to head at start (``upgrade``)."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
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
        never_reuse_ids(cls)


def never_reuse_ids(cls: type) -> None:
    """Give a mapped class's table ``sqlite_autoincrement`` when its key is an integer ``id`` (every declarative
    base of the project calls this from ``__init_subclass__``: the Node's ``Base``, the Network's)."""
    table = cls.__dict__.get("__table__")
    if isinstance(table, Table) and has_integer_id(table):
        table.dialect_options["sqlite"]["autoincrement"] = True


def has_integer_id(table: Table) -> bool:
    """A single-column integer primary key named ``id`` (what SQLite's AUTOINCREMENT applies to)."""
    pk = list(table.primary_key.columns)
    return len(pk) == 1 and pk[0].name == "id" and isinstance(pk[0].type, Integer)


READ_SLOTS = 2
"""SQLite: read transactions open at once (WAL readers never wait for the writer, nor for each other). Two, not
more: the Node is one Python process, and each further reader thread is one more for the writer to wait behind
for Python's lock at every SQLite call (docs/benchmarks.md, "Load": with 4 the mix's p99 was 2-3x longer)."""
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
VERSION_TABLE = "alembic_version"


def alembic_config(url: str, migrations: Path = MIGRATIONS_DIR) -> Any:
    """Alembic's configuration for the database at ``url`` and the migrations in ``migrations`` (the Node's by
    default; the Network has its own, ``grid_runtime/network/migrations``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, *, migrations: Path = MIGRATIONS_DIR,
            create: Callable[[Connection, str], None] | None = None) -> None:
    """Bring this engine's database to the newest schema (the head migration), loading Alembic only if it must.

    - At head already (every start after the first): nothing to do. The stored revision is compared with
      ``head_revision()``, read from the migration scripts' text, so Alembic is not even imported.
    - Empty (a first start; SQLite or PostgreSQL): the schema is built from the models in one transaction and
      stamped at head (``create_schema``; Alembic's cookbook recipe "Building an Up to Date Database from
      Scratch"), instead of replaying every migration. tests/test_fresh_schema.py proves both ways give the same
      schema.
    - Otherwise (an older revision): Alembic applies the migrations from the stored revision up to head.

    ``migrations`` and ``create`` name another service's schema (the Network's); by default the Node's.
    """
    head = head_revision(migrations / "versions")
    with read_engine(engine).connect() as conn:
        tables = set(inspect(conn).get_table_names())
        stored = set(conn.scalars(text("SELECT version_num FROM alembic_version"))) if VERSION_TABLE in tables \
            else set[str]()
    if head is not None and stored == {head}:
        return
    if head is not None and not tables and engine.dialect.name in ("sqlite", "postgresql"):
        with engine.begin() as conn:
            (create or create_schema)(conn, head)
        return
    migrate(engine, migrations=migrations)


def migrate(engine: Engine, *, migrations: Path = MIGRATIONS_DIR) -> None:
    """Apply every migration from the stored revision up to head (Alembic)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False), migrations)
    with engine.connect() as conn, sqlite_foreign_keys_off(conn), conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def run_migrations(target_metadata: MetaData) -> None:
    """The body of a service's Alembic ``env.py`` (the Node's, the Network's): run the migrations on the connection
    ``migrate`` handed over, or else on a new one to ``sqlalchemy.url`` with SQLite's foreign keys off, comparing
    against ``target_metadata`` in batch mode. What migrations create outside the ORM (tables and indexes named
    with one of ``target_metadata.info["unmanaged_prefixes"]``: full-text search) is left alone."""
    from alembic import context

    prefixes = tuple(target_metadata.info.get("unmanaged_prefixes", ()))

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        return not (reflected and compare_to is None and name is not None and prefixes and name.startswith(prefixes))

    def run_on(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = create_database_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn, sqlite_foreign_keys_off(conn):
            run_on(conn)
    finally:
        engine.dispose()


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*$", re.MULTILINE)


def head_revision(versions: Path = MIGRATIONS_DIR / "versions") -> str | None:
    """The head migration's revision id, read from the scripts in ``versions`` as text (cheap: Alembic is not
    loaded): the one revision that no other revises. None if there is not exactly one (no scripts, or branches),
    or a script this reading does not understand: then Alembic decides."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in versions.glob("*.py"):
        assigned = {match[1]: match[2] for match in _REVISION_LINE.finditer(script.read_text())}
        try:
            revision = ast.literal_eval(assigned["revision"])
            down = ast.literal_eval(assigned.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        revised.update([down] if isinstance(down, str) else (down or ()))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


# What the migrations make beyond the models' tables, columns, indexes and constraints, as they make it
# (0001, 0005, 0006: append-only tables, see migrations/append_only.py; 0002: full-text search over tensors).
APPEND_ONLY_TABLES = ("audit_events", "privacy_ledger", "privacy_ledger_datasets")
_SQLITE_FULL_TEXT_SEARCH = (
    "CREATE VIRTUAL TABLE tensors_fts USING fts5(name, description, content='tensors', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER tensors_fts_insert AFTER INSERT ON tensors BEGIN "
    "INSERT INTO tensors_fts(rowid, name, description) VALUES (new.id, new.name, new.description); END",
    "CREATE TRIGGER tensors_fts_delete AFTER DELETE ON tensors BEGIN "
    "INSERT INTO tensors_fts(tensors_fts, rowid, name, description) "
    "VALUES ('delete', old.id, old.name, old.description); END",
    "CREATE TRIGGER tensors_fts_update AFTER UPDATE OF name, description ON tensors BEGIN "
    "INSERT INTO tensors_fts(tensors_fts, rowid, name, description) "
    "VALUES ('delete', old.id, old.name, old.description); "
    "INSERT INTO tensors_fts(rowid, name, description) VALUES (new.id, new.name, new.description); END",
)
_POSTGRES_FULL_TEXT_SEARCH = (
    "CREATE INDEX tensors_fts_gin ON tensors USING gin (to_tsvector('simple', name || ' ' || description))",
)


def _append_only(table: str, dialect: str) -> tuple[str, ...]:
    if dialect == "sqlite":
        return tuple(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                     f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END" for verb in ("UPDATE", "DELETE"))
    return (f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")


def create_schema(conn: Connection, revision: str) -> None:
    """On an empty database, in the caller's transaction: every table from the models, what the migrations add
    beyond them (triggers, full-text search), and the version table stamped at ``revision`` (as Alembic's
    ``stamp`` writes it)."""
    from grid_runtime.node import models  # noqa: F401  (registers every table on Base.metadata)

    dialect = conn.dialect.name
    Base.metadata.create_all(conn)
    statements = [*_SQLITE_FULL_TEXT_SEARCH] if dialect == "sqlite" else [*_POSTGRES_FULL_TEXT_SEARCH]
    for table in APPEND_ONLY_TABLES:
        statements.extend(_append_only(table, dialect))
    for statement in statements:
        conn.exec_driver_sql(statement)
    stamp(conn, revision)


def stamp(conn: Connection, revision: str) -> None:
    """Create the version table and stamp it at ``revision``, as Alembic's ``stamp`` writes it."""
    version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))
    version.create(conn)
    conn.execute(version.insert().values(version_num=revision))


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
