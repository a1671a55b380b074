"""Append-only tables, enforced by the database itself (triggers), for migrations to install and remove.

The audit log and the privacy ledger use it: their rows are history, and no code path may rewrite it.
"""

from __future__ import annotations

from alembic import op


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` in the database, not only in the code."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def drop_append_only_function(table: str) -> None:
    """After dropping ``table`` (its triggers go with it): PostgreSQL's trigger function stays, remove it."""
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"DROP FUNCTION {table}_append_only()")
