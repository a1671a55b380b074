"""ids never reused, token revocation, login throttling (issue 11)

- ``login_throttle`` replaces ``login_failures``: one row per account and address (and per address for every
  account), counted before the password is checked, with exponential back-off.
- SQLite: every table whose primary key is an integer ``id`` is rebuilt with ``AUTOINCREMENT`` (the models
  say ``sqlite_autoincrement``, see ``core.database.Base``), so a deleted row's id is never handed out again.
  The rebuild follows SQLite's own procedure (new table from the stored ``CREATE TABLE`` with the key made
  ``AUTOINCREMENT``, copy, drop, rename, then the table's indexes and triggers re-created from their stored
  SQL), so CHECK constraints, foreign keys and the append-only triggers are kept exactly. Foreign keys are
  off while migrations run (``core.database.sqlite_foreign_keys_off``). PostgreSQL sequences never reuse ids.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

import grid_runtime.core.database

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_ID_COLUMN = re.compile(r"(\n\s*id INTEGER NOT NULL),")
_PK_CLAUSE = re.compile(r",\s*CONSTRAINT (\w+) PRIMARY KEY \(id\)")


def _autoincrement_sqlite_tables() -> None:
    conn = op.get_bind()
    tables = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'alembic_version' ORDER BY name").fetchall()
    for name, sql in tables:
        if sql is None or "AUTOINCREMENT" in sql.upper() or "VIRTUAL TABLE" in sql.upper():
            continue
        column, clause = _ID_COLUMN.search(sql), _PK_CLAUSE.search(sql)
        if column is None or clause is None:
            continue  # no single integer id key (association tables, full-text shadow tables)
        new = f"_grid_rebuild_{name}"
        body = sql[:clause.start()] + sql[clause.end():]
        body = _ID_COLUMN.sub(rf"\1 CONSTRAINT {clause.group(1)} PRIMARY KEY AUTOINCREMENT,", body, count=1)
        header = re.match(r"CREATE TABLE\s+(\"?)" + re.escape(name) + r"\1", body)
        assert header is not None, f"unexpected table SQL for {name}"
        body = f'CREATE TABLE "{new}"' + body[header.end():]
        others = [row[0] for row in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
            (name,)).fetchall()]
        conn.exec_driver_sql(body)
        conn.exec_driver_sql(f'INSERT INTO "{new}" SELECT * FROM "{name}"')  # noqa: S608  (names from sqlite_master)
        conn.exec_driver_sql(f'DROP TABLE "{name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{new}" RENAME TO "{name}"')
        for statement in others:
            conn.exec_driver_sql(statement)


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('blocked_until', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_throttle')),
    sa.UniqueConstraint('email', 'client_address', name=op.f('uq_login_throttle_email')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failures_email'))
        batch_op.drop_index(batch_op.f('ix_login_failures_client_address'))
        batch_op.drop_index(batch_op.f('ix_login_failures_at'))
    op.drop_table('login_failures')
    if op.get_bind().dialect.name == "sqlite":
        _autoincrement_sqlite_tables()


def downgrade() -> None:
    # AUTOINCREMENT stays on SQLite's tables: it is harmless to the earlier revisions.
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=False),
    sa.Column('at', grid_runtime.core.database.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_failures_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_client_address'), ['client_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_email'), ['email'], unique=False)
    op.drop_table('login_throttle')
