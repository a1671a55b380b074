"""Concurrency by design (grid_runtime/node/deps.py): reads run beside a write, no request waits for argon2,
and a body that streams in holds no session. Behaviour, not timing thresholds: every wait is bounded only
so that a regression fails instead of hanging."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from grid_runtime.node import deps, probes
from grid_runtime.node.auth import router as auth_router
from grid_runtime.node.users import router as users_router
from tests.factories import PASSWORD, Factory
from tests.live import LiveNode, start_live_node

API = "/api/v1"
BOUND = 20.0  # seconds: only a request that is blocked takes this long


def run_on_a_loop_of_its_own(awaitable: Any) -> Any:
    """Run a coroutine on a new event loop, leaving the thread's current loop alone (``asyncio.run`` would unset
    it, and Pulumi's mocks in later tests want one)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(awaitable)
    finally:
        loop.close()


def finishes(call: Callable[[], Any], within: float = BOUND) -> Any:
    """``call()`` in a thread; its result if it returns within the bound, else the test fails."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "the request was blocked"
    if "error" in box:
        raise box["error"]
    return box["result"]


@pytest.fixture
def held_write(any_db_factory: Factory) -> Iterator[Callable[[], None]]:
    """Start a write transaction that holds the writer (SQLite) / a row lock (PostgreSQL) until the test ends."""
    session = any_db_factory.sessions()
    session.begin()

    def hold() -> None:
        session.execute(text("UPDATE users SET full_name = 'held' WHERE id = (SELECT min(id) FROM users)"))

    try:
        yield hold
    finally:
        session.rollback()
        session.close()


class TestReadsDoNotWaitForTheWriter:
    def test_a_read_completes_while_a_write_transaction_is_open(
        self, any_db_client: TestClient, any_db_factory: Factory, held_write: Callable[[], None]
    ) -> None:
        user = any_db_factory.user("Administrator")
        any_db_client.get(f"{API}/users/me", headers=user.headers)  # its token's first use is recorded
        held_write()
        me = finishes(lambda: any_db_client.get(f"{API}/users/me", headers=user.headers))
        assert me.status_code == 200 and me.json()["id"] == user.id
        listed = finishes(lambda: any_db_client.get(f"{API}/users", headers=user.headers))
        assert listed.status_code == 200 and listed.json()["total"] >= 1
        assert finishes(lambda: any_db_client.get(f"{API}/health")).status_code == 200

    def test_a_read_whose_transaction_must_write_is_run_again_as_a_write(
        self, client: TestClient, factory: Factory
    ) -> None:
        # A download is a GET that records an audit event: its read transaction refuses the write and the
        # request is run again as a write; the caller sees one normal answer.
        owner = factory.owner()
        buffer = io.BytesIO()
        np.save(buffer, np.arange(6, dtype=np.float32))
        tensor = client.post(f"{API}/tensors", params={"name": "t", "format": "npy"}, content=buffer.getvalue(),
                             headers=owner.headers).json()
        data = client.get(f"{API}/tensors/{tensor['id']}/data", headers=owner.headers)
        assert data.status_code == 200 and data.content
        assert factory.audit_actions().count("tensor.downloaded") == 1

    def test_a_tokens_use_is_recorded_after_a_read(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        assert client.get(f"{API}/users/me", headers=user.headers).status_code == 200
        value = None
        for _ in range(100):  # a short write of its own, after the answer
            with factory.sessions() as session:
                value = session.scalar(text("SELECT last_used_at FROM tokens WHERE user_id = :u"), {"u": user.id})
            if value is not None:
                break
            time.sleep(0.05)
        assert value is not None


class TestHealthNeedsNoWorkerThreadOnSqlite:
    """``/health`` reads the SQLite file on the event loop (``SqliteProbe``): a probe never waits for a worker
    thread, so a crowd's threads cannot keep it waiting; should the probe fail, the usual ping answers."""

    def test_health_reads_the_database_without_a_worker_thread(
        self, client: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        threads: list[object] = []

        async def no_thread(fn: Callable[..., Any], *args: Any) -> Any:
            threads.append(fn)
            return fn(*args)

        monkeypatch.setattr(deps, "run_in_threadpool", no_thread)
        assert client.get(f"{API}/health").json() == {"status": "ok"}
        assert threads == []
        probe = client.app.state.database.probe  # type: ignore[attr-defined]
        assert probe is not None and probe._connection is not None  # opened by the event loop's thread, kept

    def test_a_failed_probe_falls_back_to_the_ping_in_a_worker_thread(
        self, client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        database = client.app.state.database  # type: ignore[attr-defined]
        monkeypatch.setattr(database.probe, "path", str(tmp_path / "missing" / "node.db"))
        client.portal.call(database.probe.close)  # type: ignore[union-attr]  (on the app's event loop)
        threads: list[object] = []
        real = deps.run_in_threadpool

        async def counted(fn: Callable[..., Any], *args: Any) -> Any:
            threads.append(fn)
            return await real(fn, *args)

        monkeypatch.setattr(deps, "run_in_threadpool", counted)
        assert client.get(f"{API}/health").json() == {"status": "ok"}
        assert threads == [database._ping_now]
        assert not (tmp_path / "missing").exists()  # a probe never creates a database

    def test_the_probe_answers_false_for_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        garbage = tmp_path / "node.db"
        garbage.write_bytes(b"not a database" * 100)
        assert run_on_a_loop_of_its_own(probes.SqliteProbe(str(garbage)).ping()) is False
        assert run_on_a_loop_of_its_own(probes.SqliteProbe(str(tmp_path / "absent.db")).ping()) is False
        assert not (tmp_path / "absent.db").exists()


class TestProbesOnEveryBackend:
    def test_health_asks_the_database_without_a_worker_thread(
        self, any_db_client: TestClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        database = any_db_client.app.state.database  # type: ignore[attr-defined]
        threads: list[object] = []
        real = deps.run_in_threadpool

        async def counted(fn: Callable[..., Any], *args: Any) -> Any:
            threads.append(fn)
            return await real(fn, *args)

        monkeypatch.setattr(deps, "run_in_threadpool", counted)
        assert any_db_client.get(f"{API}/health").json() == {"status": "ok"}
        assert database.probe is not None and threads == []

    def test_an_unreachable_server_answers_false_within_the_timeout(self) -> None:
        with socket.socket() as closed:  # a port nothing listens on
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        probe = probes.PostgresProbe(f"postgresql://nobody:x@127.0.0.1:{port}/none")
        started = time.monotonic()
        assert run_on_a_loop_of_its_own(probe.ping()) is False
        assert time.monotonic() - started < probes.PROBE_TIMEOUT + 1


class TestNoArgon2InsideATransaction:
    def test_another_write_completes_while_a_login_checks_its_password(
        self, client: TestClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        admin = factory.user("Administrator")
        user = factory.user()
        writes: list[int] = []
        real_verify = auth_router.verify_password

        def verify_while_someone_writes(password_hash: str | None, password: str) -> bool:
            response = finishes(lambda: client.post(f"{API}/groups", json={"name": f"g{len(writes)}"},
                                                    headers=admin.headers))
            writes.append(response.status_code)
            return real_verify(password_hash, password)

        monkeypatch.setattr(auth_router, "verify_password", verify_while_someone_writes)
        login = client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        assert login.status_code == 200 and writes == [201]

    def test_another_write_completes_while_a_new_users_password_is_hashed(
        self, client: TestClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        admin = factory.user("Administrator")
        writes: list[int] = []
        real_hash = users_router.hash_password

        def hash_while_someone_writes(password: str) -> str:
            response = finishes(lambda: client.post(f"{API}/groups", json={"name": "during-hash"},
                                                    headers=admin.headers))
            writes.append(response.status_code)
            return real_hash(password)

        monkeypatch.setattr(users_router, "hash_password", hash_while_someone_writes)
        created = client.post(f"{API}/users", json={"email": "new@example.com", "password": "a fine password"},
                              headers=admin.headers)
        assert created.status_code == 201 and writes == [201]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    started = start_live_node(tmp_path_factory.mktemp("concurrency-node"))
    try:
        yield started
    finally:
        started.stop()


class TestStreamingBodiesHoldNoSession:
    def test_reads_and_writes_answer_while_an_upload_body_is_still_arriving(self, node: LiveNode) -> None:
        headers = {"Authorization": f"Bearer {node.owner_token}"}
        host, port = node.url.removeprefix("http://").split(":")
        body = b"x" * 4096
        with socket.create_connection((host, int(port)), timeout=BOUND) as sock:
            sock.sendall((f"POST /api/v1/tensors?name=slow&format=npy HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {node.owner_token}\r\nContent-Length: {len(body)}\r\n\r\n"
                          ).encode() + body[:100])
            time.sleep(0.5)  # authenticated, now streaming: the rest of the body is held back
            me = finishes(lambda: httpx.get(f"{node.api}/users/me", headers=headers, timeout=BOUND))
            group = finishes(lambda: httpx.post(f"{node.api}/groups", json={"name": "during-upload"},
                                                headers=headers, timeout=BOUND))
            assert me.status_code == 200 and group.status_code == 201
            sock.sendall(body[100:])
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 422")  # read to its end, then refused on its merits (not an npy)
