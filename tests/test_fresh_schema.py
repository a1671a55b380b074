"""A first start builds the schema from the models and stamps it at head instead of replaying every migration
(``grid_runtime.core.database.upgrade``, issue 11: the migrations were a fifth of a Node's start). These tests
prove the two ways give the same database, on SQLite and on PostgreSQL: every table, column, key, index,
constraint, trigger and function as the database itself reports them, and the same stamped revision. A database
at an older revision is still brought to head by the migrations, keeping its rows, and one at head is left alone
without loading Alembic at all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DatabaseError

from grid_runtime.core.database import (
    Base,
    alembic_config,
    create_database_engine,
    head_revision,
    migrate,
    upgrade,
)
from tests.live import throwaway_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh, empty databases on the same backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'first.db'}", f"sqlite:///{tmp_path / 'second.db'}"
    else:
        with throwaway_postgres() as first, throwaway_postgres() as second:
            yield first, second


def _words(sql: str | None) -> str:
    return " ".join((sql or "").split())


def schema_of(engine: Engine) -> dict[str, Any]:
    """Everything the database reports about its schema, in a form two databases can be compared by.

    Columns are compared by name, not position: the migrations add columns at the end of a table, the models
    declare them where they read best. On SQLite the name of an ``AUTOINCREMENT`` primary key is left out: SQLite
    keeps such a key inline in the column, where the name has no use (no statement can address it), and the
    migrated databases themselves do not agree on it (0007 kept the names of the tables it rebuilt; the table it
    created has none)."""
    inspector = inspect(engine)
    sqlite = engine.dialect.name == "sqlite"
    autoincrement: set[str] = set()
    if sqlite:  # not reflected by SQLAlchemy: read from the table's statement
        with engine.connect() as conn:
            autoincrement = {name for name, sql in conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'")) if "AUTOINCREMENT" in (sql or "").upper()}
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(name)
        tables[name] = {
            "columns": {c["name"]: sorted((k, repr(v)) for k, v in c.items() if k != "name")
                        for c in inspector.get_columns(name)},
            "primary_key": (pk["constrained_columns"], None if sqlite else pk.get("name")),
            "foreign_keys": sorted(
                (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["referred_columns"],
                 sorted(fk.get("options", {}).items())) for fk in inspector.get_foreign_keys(name)),
            "unique": sorted((u["name"], u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "indexes": sorted((i["name"], [str(c) for c in i["column_names"]], i["unique"],
                               [_words(str(e)) for e in i.get("expressions") or ()])
                              for i in inspector.get_indexes(name)),
            "checks": sorted((c["name"], _words(c["sqltext"])) for c in inspector.get_check_constraints(name)),
            "options": sorted((k, str(v)) for k, v in inspector.get_table_options(name).items()),
            "autoincrement": name in autoincrement,
        }
    with engine.connect() as conn:
        if sqlite:  # triggers and the full-text search table, as SQLite stores their statements
            others = sorted((kind, name, table, _words(sql)) for kind, name, table, sql in conn.execute(text(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
                "OR (type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%')")))
        else:
            others = sorted(tuple(row) for row in conn.execute(text(
                "SELECT 'trigger', tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal "
                "UNION ALL SELECT 'function', p.proname, '', pg_get_functiondef(p.oid) FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() "
                "UNION ALL SELECT 'sequence', c.relname, '', '' FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = current_schema()")))
        version = sorted(conn.scalars(text("SELECT version_num FROM alembic_version")))
    return {"tables": tables, "others": others, "version": version}


def _differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    found = [f"{key}: {first[key]!r} != {second[key]!r}" for key in ("others", "version") if first[key] != second[key]]
    for table in sorted(first["tables"].keys() | second["tables"].keys()):
        a, b = first["tables"].get(table), second["tables"].get(table)
        if a != b:
            found.append(f"table {table}: " + ("missing on one side" if a is None or b is None else
                                               "; ".join(f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k])))
    return found


def _engines(*urls: str) -> list[Engine]:
    return [create_database_engine(url) for url in urls]


def test_the_head_is_read_from_the_scripts_as_alembic_reads_it() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.mark.parametrize(("scripts", "head"), [
    ({"1.py": "revision = 'a'\ndown_revision = None\n",
      "2.py": "revision: str = 'b'\ndown_revision: str | None = 'a'\n"}, "b"),
    ({"1.py": "revision = 'a'\ndown_revision = None\n", "2.py": "revision = 'b'\ndown_revision = 'a'\n",
      "3.py": "revision = 'c'\ndown_revision = 'a'\n"}, None),  # two heads: Alembic decides
    ({"1.py": "revision = 'a'\ndown_revision = None\n", "2.py": "revision = 'b'\ndown_revision = 'a'\n",
      "3.py": "revision = 'c'\ndown_revision = 'a'\n", "4.py": "revision = 'd'\ndown_revision = ('b', 'c')\n"}, "d"),
    ({"1.py": "revision = make_id()\ndown_revision = None\n"}, None),  # not a literal: not understood
    ({}, None),
])
def test_the_head_is_the_one_revision_nothing_revises(tmp_path: Path, scripts: dict[str, str],
                                                      head: str | None) -> None:
    for name, source in scripts.items():
        (tmp_path / name).write_text(f'"""Revision ID: x\nRevises: y\n"""\n{source}')
    assert head_revision(tmp_path) == head


def test_a_fresh_database_has_the_schema_the_migrations_make(two_databases: tuple[str, str]) -> None:
    fresh_url, migrated_url = two_databases
    fresh, migrated = _engines(fresh_url, migrated_url)
    try:
        upgrade(fresh)  # empty: built from the models, stamped at head
        migrate(migrated)  # every migration, as an older Node did
        fresh_schema, migrated_schema = schema_of(fresh), schema_of(migrated)
        assert _differences(fresh_schema, migrated_schema) == []
        assert fresh_schema["version"] == [head_revision()]
        assert {"users", "audit_events", "privacy_ledger", "tensors", "alembic_version"} <= set(fresh_schema["tables"])
        assert sum(kind == "trigger" for kind, *_ in fresh_schema["others"]) >= 3  # what the models do not declare
        if fresh.dialect.name == "sqlite":  # ids never reused (migration 0007 rebuilt the tables for it)
            assert fresh_schema["tables"]["grants"]["autoincrement"] is True
        command.check(alembic_config(fresh_url))  # and Alembic finds nothing to migrate on the fresh one
    finally:
        for engine in (fresh, migrated):
            engine.dispose()


def test_the_models_alone_would_not_make_the_schema(two_databases: tuple[str, str]) -> None:
    """The control for the test above: ``create_all`` without the triggers and the full-text search is caught."""
    models_only_url, migrated_url = two_databases
    models_only, migrated = _engines(models_only_url, migrated_url)
    try:
        from grid_runtime.node import models  # noqa: F401  (registers every table)

        Base.metadata.create_all(models_only)
        command.stamp(alembic_config(models_only_url), "head")
        migrate(migrated)
        differences = _differences(schema_of(models_only), schema_of(migrated))
        assert differences and differences[0].startswith("others:")
    finally:
        for engine in (models_only, migrated):
            engine.dispose()


def test_a_fresh_database_keeps_its_history_append_only(tmp_path: Path, database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_events (at, action, target_type, details) "
                              "VALUES (CURRENT_TIMESTAMP, 'test.event', 'test', '{}')"))
        for statement in ("UPDATE audit_events SET action = 'tampered'", "DELETE FROM audit_events"):
            with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.connect() as conn:
            assert conn.scalars(text("SELECT action FROM audit_events")).all() == ["test.event"]
    finally:
        engine.dispose()


def test_a_database_at_an_older_revision_is_brought_to_head_by_the_migrations(
    two_databases: tuple[str, str],
) -> None:
    old_url, fresh_url = two_databases
    old, fresh = _engines(old_url, fresh_url)
    try:
        command.upgrade(alembic_config(old_url), "0005")
        with old.begin() as conn:
            conn.execute(text("INSERT INTO audit_events (at, action, target_type, details) "
                              "VALUES (CURRENT_TIMESTAMP, 'kept.event', 'test', '{}')"))
        with old.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0005"
        upgrade(old)
        upgrade(fresh)
        assert _differences(schema_of(old), schema_of(fresh)) == []
        with old.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
            assert conn.scalars(text("SELECT action FROM audit_events")).all() == ["kept.event"]
    finally:
        for engine in (old, fresh):
            engine.dispose()


_LOADS_ALEMBIC = """
import sys
from grid_runtime.core.database import create_database_engine, upgrade
engine = create_database_engine(sys.argv[1])
upgrade(engine)
print("alembic" in sys.modules)
"""


def test_a_start_loads_alembic_only_when_there_are_migrations_to_run(tmp_path: Path) -> None:
    """Empty, and at head: Alembic is not imported. At an older revision it is (and runs)."""
    url = f"sqlite:///{tmp_path / 'node.db'}"

    def loads_alembic() -> str:
        done = subprocess.run([sys.executable, "-c", _LOADS_ALEMBIC, url], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert loads_alembic() == "False"  # empty: built from the models
    engine = create_database_engine(url)
    try:
        with engine.connect() as conn:
            before = sorted(conn.execute(text("SELECT type, name, sql FROM sqlite_master")).all())
        assert loads_alembic() == "False"  # at head: nothing to do, nothing changed
        with engine.connect() as conn:
            assert sorted(conn.execute(text("SELECT type, name, sql FROM sqlite_master")).all()) == before
        command.downgrade(alembic_config(url), "0006")
        assert loads_alembic() == "True"  # an older revision: the migrations run
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
    finally:
        engine.dispose()
