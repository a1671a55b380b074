"""``/health``'s look at the database, made on the event loop with a connection kept for it: no worker thread and
no request slot, so a probe answers however busy the Node is (docs/benchmarks.md, "Load").

- SQLite (``SqliteProbe``): a read of the schema through the standard library's driver. A WAL reader never
  waits for the writer; ``timeout=0`` makes any lock an error rather than a wait, and ``mode=rw`` means a
  probe never creates a database.
- PostgreSQL (``PostgresProbe``): ``SELECT 1`` on psycopg's asyncio connection, bounded by ``PROBE_TIMEOUT``.

A probe that fails closes its connection and answers False; the caller then pings the usual way, whose error
is the answer (``Database.ping``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine

if TYPE_CHECKING:
    import psycopg

PROBE_TIMEOUT = 2.0
"""Seconds a PostgreSQL probe may take (connecting included) before it counts as failed."""


class Probe(Protocol):
    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


class SqliteProbe:
    """Opened on first use by the thread that uses it (the event loop's)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    async def ping(self) -> bool:
        try:
            if self._connection is None:
                uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
                self._connection = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None)
            self._connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return True
        except sqlite3.Error:
            await self.close()
            return False

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresProbe:
    """psycopg's asyncio connection, made on first use; ``conninfo`` as libpq takes it."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._connection: psycopg.AsyncConnection[object] | None = None

    async def ping(self) -> bool:
        import psycopg

        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                if self._connection is None or self._connection.closed:
                    self._connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                await self._connection.execute("SELECT 1")
            return True
        except (psycopg.Error, OSError, TimeoutError):
            await self.close()
            return False

    async def close(self) -> None:
        if self._connection is not None:
            import psycopg

            connection, self._connection = self._connection, None
            with contextlib.suppress(psycopg.Error, OSError):  # a broken connection: nothing left to close
                await connection.close()


def probe_for(engine: Engine) -> Probe | None:
    """The probe for ``engine``'s database, or None (an in-memory SQLite database, another dialect)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return SqliteProbe(url.database) if url.database and url.database != ":memory:" else None
    if url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
        return PostgresProbe(url.set(drivername="postgresql").render_as_string(hide_password=False))
    return None
