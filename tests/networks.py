"""Networks for tests: in process (a TestClient and a factory of users) and live (uvicorn in a subprocess)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from grid_runtime.core.capabilities import NetworkCapability
from grid_runtime.core.database import utcnow
from grid_runtime.core.security import new_token
from grid_runtime.network.database import NetworkBase
from grid_runtime.network.models import Role, Token, User
from tests.factories import password_hash
from tests.live import OWNER_EMAIL, OWNER_PASSWORD, LiveNode, free_port, wait_healthy

_seq = itertools.count(1)


@dataclass
class NetworkUser:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class NetworkFactory:
    """Users with capabilities, written straight to the Network's database; joins through the real API."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.sessions = client.app.state.database.sessions  # type: ignore[attr-defined]

    def user(self, role: str | None = None, *, capabilities: set[NetworkCapability] | None = None) -> NetworkUser:
        n = next(_seq)
        with self.sessions.begin() as session:
            if capabilities is not None:
                found = Role(name=f"custom-{n}", capabilities=sorted(capabilities))
                session.add(found)
            else:
                found = session.scalar(select(Role).where(Role.name == (role or "Member")))
            user = User(email=f"user{n}@example.com", password_hash=password_hash(), role=found)
            session.add(user)
            session.flush()
            secret, digest = new_token("gnsess")
            session.add(Token(user_id=user.id, token_hash=digest, expires_at=utcnow().replace(year=utcnow().year + 1)))
            return NetworkUser(user.id, secret)

    def join(self, name: str, *, url: str | None = None, invitation: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"node_name": name, "node_url": url or f"https://{name}.example.com",
                                "node_credential": "gnodepeer_" + "x" * 40 + name}
        if invitation:
            body["invitation"] = invitation
        response = self.client.post("/api/v1/associations", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def snapshot(self) -> dict[str, int]:
        """Rows per table: what a refused request must leave unchanged."""
        with self.sessions.begin() as session:
            return {t.name: int(session.scalar(select(func.count()).select_from(t)) or 0)
                    for t in NetworkBase.metadata.sorted_tables if t.name != "audit_events"}


class LiveNetwork(LiveNode):
    """A live Network: the same process handle as a live Node's (``api``, ``login``, ``stop``)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.owner_token}"}


def start_live_network(state_dir: Path, extra_env: dict[str, str] | None = None) -> LiveNetwork:
    """``python -m grid_runtime.network`` on a free port, its Owner set up and logged in."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "GRID_NETWORK_STATE_DIR": str(state_dir), "GRID_NETWORK_PORT": str(port),
           **(extra_env or {})}
    log = state_dir / "network.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "grid_runtime.network"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    network = LiveNetwork(url=f"http://127.0.0.1:{port}", state_dir=state_dir, process=process, env=env)
    try:
        wait_healthy(network.url, process, log)
        setup_token = (state_dir / "setup-token").read_text().strip()
        httpx.post(f"{network.api}/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                                 "password": OWNER_PASSWORD}, timeout=60).raise_for_status()
        response = httpx.post(f"{network.api}/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
                              timeout=60)
        response.raise_for_status()
        network.owner_token = response.json()["token"]
    except BaseException:
        network.stop()
        raise
    return network


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """``check()``'s first truthy answer, polled every 0.2 s; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
