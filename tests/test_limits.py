"""Request-body limits (grid_runtime/core/limits.py): every non-upload route refuses a body over
``max_body_bytes`` while reading it, before parsing (413 with the typed error body), and a body that stalls or
crawls is ended (408). Checked in process and against a real uvicorn Node (RSS, slow sockets)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from tests.factories import Factory
from tests.live import LiveNode, start_live_node

API = "/api/v1"


@pytest.fixture
def small_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'node.db'}",
                            max_body_bytes=2048)
    with TestClient(create_app(settings)) as client:
        yield client


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "payload_too_large" and body["details"] == {"max_body_bytes": 2048}
    assert set(body) == {"code", "message", "details"}


class TestBodyLimit:
    def test_a_declared_length_over_the_limit_is_refused_before_authentication(self, small_client: TestClient) -> None:
        # Unauthenticated: the limit answers first (413, not 401), without reading the body.
        response = small_client.post(f"{API}/users", content=b"{" + b" " * 4096 + b"}",
                                     headers={"Content-Type": "application/json"})
        _assert_413(response)

    def test_a_chunked_body_is_refused_once_it_passes_the_limit(self, small_client: TestClient) -> None:
        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for _ in range(64):
                yield b" " * 1024

        response = small_client.post(f"{API}/auth/login", content=chunks(),
                                     headers={"Content-Type": "application/json"})
        _assert_413(response)

    def test_a_body_within_the_limit_reaches_the_route(self, small_client: TestClient) -> None:
        response = small_client.post(f"{API}/auth/login", json={"email": "a@example.com", "password": "x" * 1000})
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"

    def test_uploads_are_not_bound_by_the_json_limit(self, small_client: TestClient) -> None:
        import io

        import numpy as np

        user = Factory(small_client).user("Administrator")
        buffer = io.BytesIO()
        np.save(buffer, np.zeros((64, 64), dtype=np.float32))  # 16 KiB, 8× max_body_bytes
        response = small_client.post(f"{API}/tensors", params={"name": "big", "format": "npy"},
                                     content=buffer.getvalue(), headers=user.headers)
        assert response.status_code == 201, response.text




@pytest.fixture(scope="module")
def strict_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    node = start_live_node(tmp_path_factory.mktemp("strict-node"), {
        "GRID_NODE_BODY_READ_TIMEOUT_SECONDS": "1", "GRID_NODE_MIN_BODY_RATE_BYTES": "10000"})
    try:
        yield node
    finally:
        node.stop()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _raw_request(node: LiveNode, head: bytes) -> socket.socket:
    host, port = node.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head)
    return sock


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


class TestAgainstALiveNode:
    def test_an_unauthenticated_300_mb_json_body_is_refused_early_without_rss_growing(
        self, strict_node: LiveNode
    ) -> None:
        before = _rss_bytes(strict_node.process.pid)
        size = 300 * 1024**2
        sock = _raw_request(strict_node, (
            f"POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode())
        sent = 0
        try:
            chunk = b" " * (1024 * 1024)
            for _ in range(64):  # try to push 64 MB; the Node answers and stops reading long before
                try:
                    sock.sendall(chunk)
                except OSError:
                    break
                sent += len(chunk)
            status = _read_status(sock)
        finally:
            sock.close()
        assert status == 413
        assert _rss_bytes(strict_node.process.pid) - before < 32 * 1024**2

    def test_a_body_that_stalls_is_ended_with_408(self, strict_node: LiveNode) -> None:
        sock = _raw_request(strict_node, (
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{\"email\""))
        started = time.monotonic()
        try:
            status = _read_status(sock)  # nothing more is sent
        finally:
            sock.close()
        assert status == 408 and time.monotonic() - started < 8

    def test_an_upload_that_crawls_is_ended_and_never_blocks_others(self, strict_node: LiveNode) -> None:
        sock = _raw_request(strict_node, (
            f"POST /api/v1/tensors?name=slow&format=npy HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {strict_node.owner_token}\r\nContent-Length: 1000000\r\n\r\n").encode())
        started = time.monotonic()
        try:
            me = httpx.get(f"{strict_node.api}/users/me",
                           headers={"Authorization": f"Bearer {strict_node.owner_token}"}, timeout=5)
            assert me.status_code == 200  # the crawling upload holds no session
            sock.settimeout(15)
            for _ in range(20):  # 1 byte every 0.2 s: far below 10,000 bytes/s
                try:
                    sock.sendall(b"x")
                except OSError:
                    break
                time.sleep(0.2)
            status = _read_status(sock)
        finally:
            sock.close()
        assert status == 408 and time.monotonic() - started < 15
