"""Alembic: upgrade to head, models match the migrations, downgrade to base, upgrade again; on SQLite and on
PostgreSQL (``database_url``). The audit table is append-only in the database itself."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DatabaseError

from grid_runtime.core.database import alembic_config, create_database_engine


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _insert_event(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_events (at, action, target_type, details) "
            "VALUES (CURRENT_TIMESTAMP, 'test.event', 'test', '{}')"
        ))


class TestMigrations:
    def test_upgrade_check_downgrade_and_upgrade_again(self, database_url: str) -> None:
        config = alembic_config(database_url)
        engine = create_database_engine(database_url)
        try:
            command.upgrade(config, "head")
            head = ScriptDirectory.from_config(config).get_current_head()
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
            assert {"users", "roles", "groups", "group_members", "tokens", "audit_events"} <= _tables(engine)
            command.check(config)  # raises if the models and the migrations disagree

            command.downgrade(config, "base")
            assert _tables(engine) == set()

            command.upgrade(config, "head")
            command.check(config)
            assert "audit_events" in _tables(engine)
        finally:
            engine.dispose()

    def test_the_audit_table_refuses_update_and_delete(self, database_url: str) -> None:
        config = alembic_config(database_url)
        command.upgrade(config, "head")
        engine = create_database_engine(database_url)
        try:
            _insert_event(engine)
            for statement in ("UPDATE audit_events SET action = 'tampered'", "DELETE FROM audit_events"):
                with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                    conn.execute(text(statement))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT action FROM audit_events")).scalars().all() == ["test.event"]
            _insert_event(engine)  # appending still works
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT count(*) FROM audit_events")) == 2
        finally:
            engine.dispose()
