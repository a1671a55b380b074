"""A real Node in a uvicorn subprocess, for CLI and SDK tests."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

OWNER_EMAIL = "owner@example.com"
OWNER_PASSWORD = "owner password 1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveNode:
    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    owner_token: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def login(self, email: str, password: str) -> str:
        response = httpx.post(f"{self.api}/auth/login", json={"email": email, "password": password})
        response.raise_for_status()
        return str(response.json()["token"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Node exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Node not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def start_live_node(state_dir: Path, extra_env: dict[str, str] | None = None, *, timeout: float = 120) -> LiveNode:
    """A Node served by uvicorn in a subprocess on a free port, its Owner set up; ``timeout`` bounds its start
    (generous: a loaded machine imports the Node slowly)."""
    port = free_port()
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(state_dir), "GRID_NODE_PORT": str(port),
           **(extra_env or {})}
    log = state_dir / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    node = LiveNode(url=f"http://127.0.0.1:{port}", state_dir=state_dir, process=process, env=env)
    try:
        wait_healthy(node.url, process, log, timeout=timeout)
        setup_token = (state_dir / "setup-token").read_text().strip()
        httpx.post(f"{node.api}/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                              "password": OWNER_PASSWORD}, timeout=60).raise_for_status()
        node.owner_token = node.login(OWNER_EMAIL, OWNER_PASSWORD)
    except BaseException:
        node.stop()
        raise
    return node


@contextmanager
def postgres_database(admin_url: str, prefix: str = "grid_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``admin_url`` (a role that may create databases),
    force-dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, make_url, text

    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def throwaway_postgres(prefix: str = "grid_test") -> Iterator[str]:
    """A throwaway database on the test PostgreSQL server (``GRID_TEST_POSTGRES_URL``). Without one the test is
    skipped, unless ``GRID_REQUIRE_POSTGRES=1`` (``.ci/run``), where that is a failure: CI never skips it."""
    import pytest

    admin = os.environ.get("GRID_TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("GRID_REQUIRE_POSTGRES") == "1":
            pytest.fail("GRID_REQUIRE_POSTGRES=1 but GRID_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set GRID_TEST_POSTGRES_URL; .ci/run does)")
    with postgres_database(admin, prefix) as url:
        yield url
