"""Alembic: upgrade to head, models match the migrations, downgrade to base, upgrade again; on SQLite and on
PostgreSQL (``database_url``). The audit table is append-only in the database itself."""

from __future__ import annotations

from typing import Any

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


class TestIdsAreNeverReused:
    def test_every_table_with_an_id_is_autoincrement_on_sqlite(self, sqlite_url: str) -> None:
        from grid_runtime.core.database import Base, has_integer_id, migrate
        from grid_runtime.node import models  # noqa: F401

        engine = create_database_engine(sqlite_url)
        try:
            migrate(engine)  # the migrations themselves (a fresh database is built from the models instead)
            with engine.connect() as conn:
                sql = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all())
            for table in Base.metadata.sorted_tables:
                if has_integer_id(table):
                    assert "AUTOINCREMENT" in sql[table.name], table.name
            # The rebuild kept what the tables carried: CHECK constraints and the append-only triggers.
            assert "CHECK (level IN" in sql["grants"]
            with engine.connect() as conn:
                triggers = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {"audit_events_no_update", "audit_events_no_delete"} <= triggers
        finally:
            engine.dispose()

    def test_a_deleted_tensor_id_never_names_the_next_upload_and_its_pending_request_expires(
        self, client: Any, factory: Any
    ) -> None:
        import io

        import numpy as np

        owner, scientist = factory.owner(), factory.user()

        def upload(name: str) -> int:
            buffer = io.BytesIO()
            np.save(buffer, np.zeros(3, dtype=np.float32))
            response = client.post("/api/v1/tensors", params={"name": name, "format": "npy"},
                                   content=buffer.getvalue(), headers=owner.headers)
            assert response.status_code == 201, response.text
            return int(response.json()["id"])

        first = upload("first")
        asked = client.post("/api/v1/requests", headers=scientist.headers, json={
            "kind": "access", "target_type": "tensor", "target_id": first, "level": "download", "reason": "please"})
        assert asked.status_code == 201, asked.text
        assert client.delete(f"/api/v1/tensors/{first}", headers=owner.headers).status_code == 204
        assert upload("second") > first  # the newest id is not handed out again
        request = client.get(f"/api/v1/requests/{asked.json()['id']}", headers=scientist.headers).json()
        assert request["state"] == "expired"
        assert any("was deleted" in (event.get("note") or "") for event in request["events"]), request
