"""Concurrency by design (grid_runtime/node/deps.py): reads run beside a write, no request waits for argon2,
and a body that streams in holds no session. Behaviour, not timing thresholds: every wait is bounded only
so that a regression fails instead of hanging."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from grid_runtime.node.auth import router as auth_router
from grid_runtime.node.users import router as users_router
from tests.factories import PASSWORD, Factory

API = "/api/v1"
BOUND = 20.0  # seconds: only a request that is blocked takes this long


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

    def test_a_read_that_must_write_is_run_again_as_a_write(
        self, client: TestClient, factory: Factory
    ) -> None:
        # A token's first use is recorded; a GET whose transaction writes (here: the audit of a login it does
        # not do, so use a route that records the token's use) still answers, and the write lands.
        user = factory.user()
        assert client.get(f"{API}/users/me", headers=user.headers).status_code == 200
        with factory.sessions() as session:
            used = session.execute(text("SELECT last_used_at FROM tokens WHERE user_id = :u"), {"u": user.id})
            # recorded by a short write of its own after the read (it may still be on its way: wait for it)
            assert used is not None
        deadline = threading.Event()
        for _ in range(50):
            with factory.sessions() as session:
                value = session.scalar(text("SELECT last_used_at FROM tokens WHERE user_id = :u"), {"u": user.id})
            if value is not None:
                break
            deadline.wait(0.1)
        assert value is not None


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


class TestStreamingBodiesHoldNoSession:
    def test_users_me_answers_while_an_upload_body_is_still_arriving(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner()
        release = threading.Event()
        answered: list[int] = []

        def slow_body() -> Iterator[bytes]:
            yield b"\x93NUMPY"  # the upload has begun: authentication ran, the body is streaming
            # While the body is held back, another user's read and another write must go through.
            answered.append(finishes(lambda: client.get(f"{API}/users/me", headers=owner.headers)).status_code)
            answered.append(finishes(lambda: client.post(f"{API}/groups", json={"name": "while-uploading"},
                                                         headers=owner.headers)).status_code)
            release.set()
            yield b"not really an npy file"

        upload = client.post(f"{API}/tensors", params={"name": "slow", "format": "npy"}, content=slow_body(),
                             headers=owner.headers)
        assert release.is_set() and answered == [200, 201]
        assert upload.status_code == 422  # the body was read to its end and refused on its merits
        assert isinstance(upload, httpx.Response)
