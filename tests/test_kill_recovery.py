"""SIGKILL a real Node (uvicorn in a subprocess) during an upload, an approval and a job, start it again, and
check that nothing is left over and the database is consistent, on SQLite and on PostgreSQL.

After every restart: no blob without its row, no row without its blob, no upload staging directory, no
temporary object, the database's own checks clean (SQLite: integrity and foreign-key checks; PostgreSQL, which
enforces foreign keys itself: no constraint left unvalidated), and the domain's own invariants (every
request's state is its last event's; every approved access request has its grant; every acknowledged upload
is there, byte for byte). The figures go to ``.reliability/kills.json`` (one entry per backend,
tests/reliability.py) for ``scripts/reliability_report.py``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from grid_runtime.core.storage import ObjectStore
from tests.live import LiveNode, start_live_node, wait_healthy
from tests.ray_cluster import RayNode
from tests.reliability import record_figures
from tests.test_tensors_helpers import npy_bytes

MANAGED_PREFIXES = ("tensors/", "results/", "weights/")
_SWEPT = re.compile(r"removed (\d+) upload staging dir\(s\), (\d+) temporary object\(s\), (\d+) blob\(s\) without")


@dataclass
class KillLog:
    """What the kill tests did, for docs/reliability.md."""

    kills: dict[str, int] = field(default_factory=dict)
    survived: dict[str, int] = field(default_factory=dict)
    orphans: int = 0
    recovered: dict[str, int] = field(default_factory=dict)
    windows: dict[str, bool] = field(default_factory=dict)

    def record(self, scenario: str, found: dict[str, list[str]], swept: dict[str, int]) -> None:
        self.kills[scenario] = self.kills.get(scenario, 0) + 1
        if not any(found.values()):
            self.survived[scenario] = self.survived.get(scenario, 0) + 1
        self.orphans += sum(len(v) for v in found.values())
        for key, value in swept.items():
            self.recovered[key] = self.recovered.get(key, 0) + value


def backend_of(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="module")
def kill_logs() -> Iterator[dict[str, KillLog]]:
    logs: dict[str, KillLog] = {}
    yield logs
    for backend, log in logs.items():
        if set(log.kills) >= {"upload", "approval", "job"}:  # a partial run (-k) records nothing
            record_figures("kills", backend, {
                "kills": sum(log.kills.values()), "survived": sum(log.survived.values()), "orphans": log.orphans,
                "by_scenario": {k: {"kills": v, "survived": log.survived.get(k, 0)} for k, v in log.kills.items()},
                "swept_at_restart": log.recovered,
                "upload_steps_caught": log.windows})


@pytest.fixture
def kill_log(kill_logs: dict[str, KillLog], database_url: str) -> KillLog:
    """This backend's log (``database_url`` is conftest's: a fresh database on SQLite, then on PostgreSQL)."""
    return kill_logs.setdefault(backend_of(database_url), KillLog())


# ---------------------------------------------------------------------------------------------- the Node


START_TIMEOUT = 180.0  # a loaded CI machine imports the Node slowly


def start_node(tmp_path: Path, database_url: str, env: dict[str, str] | None = None) -> LiveNode:
    """A new Node in ``tmp_path/node`` on ``database_url`` with its Owner set up, with a patient start."""
    state_dir = tmp_path / "node"
    state_dir.mkdir(mode=0o700)
    return start_live_node(state_dir, {"GRID_NODE_DATABASE_URL": database_url, **(env or {})},
                           timeout=START_TIMEOUT)


def sigkill(node: LiveNode) -> None:
    node.process.send_signal(signal.SIGKILL)
    node.process.wait(timeout=30)


def restart(node: LiveNode) -> LiveNode:
    """The same Node (state dir, port, settings) started again after a kill."""
    log = node.state_dir / "node.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=node.env, stdout=out,
                                   stderr=subprocess.STDOUT)
    started = LiveNode(url=node.url, state_dir=node.state_dir, process=process, owner_token=node.owner_token,
                       env=node.env)
    try:
        wait_healthy(started.url, process, log, timeout=START_TIMEOUT)
    except BaseException:
        started.stop()
        raise
    return started


def recovery_lines(node: LiveNode) -> list[str]:
    return [line for line in (node.state_dir / "node.log").read_text(errors="replace").splitlines()
            if "recovery:" in line]


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------------------------------ the checks


@contextmanager
def connected(node: LiveNode) -> Iterator[Connection]:
    """A connection to the Node's database (SQLite or PostgreSQL), closed afterwards."""
    engine = create_engine(node.env["GRID_NODE_DATABASE_URL"], poolclass=NullPool)
    try:
        with engine.connect() as db:
            yield db
    finally:
        engine.dispose()


def leftovers(node: LiveNode) -> dict[str, list[str]]:
    """Everything that should not exist after a restart: orphans either way, staging, temporaries."""
    state_dir = node.state_dir
    store = ObjectStore((state_dir / "objects").resolve().as_uri())
    with connected(node) as db:
        named = set(db.execute(text("SELECT object_key FROM tensors")).scalars())
        named |= set(db.execute(text("SELECT object_key FROM results WHERE object_key IS NOT NULL")).scalars())
        for settings in db.execute(text("SELECT settings FROM jobs")).scalars():
            if isinstance(settings, str):  # SQLite hands JSON back as text, PostgreSQL decoded
                settings = json.loads(settings)
            initial = (settings or {}).get("initial_weights")
            if initial:
                named.add(initial["key"])
    keys = store.keys()
    present = {key for key in keys if key.startswith(MANAGED_PREFIXES)}
    uploads = state_dir / "uploads"
    return {
        "blobs_without_row": sorted(present - named),
        "rows_without_blob": sorted(k for k in named - present if not k.startswith("weights/")),
        "staging": sorted(p.name for p in uploads.iterdir()) if uploads.is_dir() else [],
        "temporaries": store.pending_temporaries(),
    }


def database_problems(node: LiveNode) -> list[str]:
    """The database's own checks and the request table's invariants."""
    problems: list[str] = []
    with connected(node) as db:
        if db.dialect.name == "sqlite":
            integrity = db.execute(text("PRAGMA integrity_check")).scalar_one()
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
            problems += [f"foreign key: {tuple(row)}" for row in db.execute(text("PRAGMA foreign_key_check"))]
        else:  # PostgreSQL checks foreign keys on every write; none may have been left unvalidated
            problems += [f"constraint not validated: {name}" for name in db.execute(text(
                "SELECT conname FROM pg_constraint WHERE NOT convalidated")).scalars()]
        for request_id, state, kind, requester, target_type, target_id in db.execute(text(
                "SELECT id, state, kind, requester_id, target_type, target_id FROM requests")):
            last = db.execute(text("SELECT to_state FROM request_events WHERE request_id = :id "
                                   "ORDER BY id DESC LIMIT 1"), {"id": request_id}).scalar()
            if last != state:
                problems.append(f"request {request_id} is {state} but its last event says {last}")
            if kind == "access" and state == "approved" and target_type == "tensor":
                grant = db.execute(text("SELECT level FROM grants WHERE user_id = :user AND tensor_id = :tensor"),
                                   {"user": requester, "tensor": target_id}).first()
                if grant is None:
                    problems.append(f"approved request {request_id} has no grant")
    return problems


def assert_recovered(node: LiveNode, kill_log: KillLog, scenario: str) -> None:
    found = leftovers(node)
    swept: dict[str, int] = {}
    lines = recovery_lines(node)
    if lines and (match := _SWEPT.search(lines[-1])):
        swept = {"staging_dirs": int(match[1]), "temporaries": int(match[2]), "blobs_without_row": int(match[3])}
    kill_log.record(scenario, found, swept)
    assert found == {"blobs_without_row": [], "rows_without_blob": [], "staging": [], "temporaries": []}
    assert database_problems(node) == []


# ------------------------------------------------------------------------------------------ the uploads


def _stream_upload(node: LiveNode, token: str, body: bytes, name: str, rate: int,
                   outcome: dict[str, Any]) -> None:
    """Send an upload over a raw socket at ``rate`` bytes/s; record the response if one comes."""
    parts = urlsplit(node.api)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
            sock.sendall((f"POST {parts.path}/tensors?name={name}&format=npy&visibility=public HTTP/1.1\r\n"
                          f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode())
            step = max(1, rate // 20)
            for start in range(0, len(body), step):
                sock.sendall(body[start:start + step])
                time.sleep(0.05)
            outcome["response"] = sock.recv(65536).decode(errors="replace")
    except OSError as exc:
        outcome["error"] = str(exc)


def _staging_upload(state_dir: Path) -> bool:
    return any(path.stat().st_size > 0 for path in (state_dir / "uploads").glob("*/upload"))


def _store_writing(state_dir: Path) -> bool:
    return any((state_dir / "objects" / ".tmp").glob("*.part"))


def _blob_count(state_dir: Path) -> int:
    return len(list((state_dir / "objects" / "tensors").glob("*.safetensors")))


def kill_when(node: LiveNode, reached: Callable[[], bool], sender: threading.Thread, timeout: float = 120) -> bool:
    """SIGKILL the Node the moment ``reached()`` is true (polled every millisecond), or once the upload has
    ended; whether the moment was caught."""
    deadline = time.monotonic() + timeout
    caught = False
    while time.monotonic() < deadline and sender.is_alive():
        try:
            caught = reached()
        except OSError:  # a file vanished between listing and stat
            caught = False
        if caught:
            break
        time.sleep(0.001)
    sigkill(node)
    return caught


class TestKillDuringUpload:
    def test_uploads_killed_at_each_step_leave_nothing_behind(self, tmp_path: Path, database_url: str,
                                                              kill_log: KillLog) -> None:
        node = start_node(tmp_path, database_url)
        try:
            body = npy_bytes(np.random.default_rng(0).normal(size=(4_000_000,)).astype(np.float32))  # 16 MB
            acknowledged: set[str] = set()
            caught: dict[str, bool] = {}
            # Each step of an upload, killed the moment the Node is in it: the body streaming to the staging
            # directory, the blob being written to the store, the blob stored but its row not yet committed.
            steps: list[tuple[str, int, Callable[[Path, int], bool]]] = [
                ("body streaming", 4_000_000, lambda state, _: _staging_upload(state)),
                ("blob being written", 400_000_000, lambda state, _: _store_writing(state)),
                ("blob stored, row not committed", 400_000_000, lambda state, before: _blob_count(state) > before),
            ]
            for step, rate, reached in steps:
                outcome: dict[str, Any] = {}
                name = f"upload-{len(caught)}"
                before = _blob_count(node.state_dir)
                sender = threading.Thread(target=_stream_upload,
                                          args=(node, node.owner_token, body, name, rate, outcome), daemon=True)
                sender.start()
                caught[step] = kill_when(node, functools.partial(reached, node.state_dir, before), sender)
                sender.join(timeout=60)
                if " 201 " in outcome.get("response", "").split("\r\n", 1)[0]:
                    acknowledged.add(name)
                node = restart(node)
                assert_recovered(node, kill_log, "upload")
            # Killed right after the Node answered: the acknowledged upload is kept.
            answered = httpx.post(f"{node.api}/tensors", params={"name": "answered", "format": "npy"},
                                  content=body, headers=headers(node.owner_token), timeout=120)
            assert answered.status_code == 201, answered.text
            acknowledged.add("answered")
            sigkill(node)
            node = restart(node)
            assert_recovered(node, kill_log, "upload")
            kill_log.windows.update(caught)
            # Every upload the Node acknowledged is there after the kills, byte for byte. (One killed after its
            # commit but before its answer may be there too, whole: the client saw its connection reset.)
            listed = httpx.get(f"{node.api}/tensors", headers=headers(node.owner_token), timeout=30).json()
            names = {t["name"] for t in listed["items"]}
            assert acknowledged <= names <= acknowledged | {f"upload-{i}" for i in range(len(steps))}
            kept = httpx.get(f"{node.api}/tensors/{answered.json()['id']}/data", headers=headers(node.owner_token),
                             timeout=120)
            assert hashlib.sha256(kept.content).hexdigest() == answered.json()["sha256"]
            assert caught["body streaming"], "the kill never caught a body streaming"
        finally:
            node.stop()

    def test_a_restart_removes_what_a_kill_between_store_and_commit_leaves(self, tmp_path: Path,
                                                                           database_url: str) -> None:
        """The window between the blob's write and its row's commit, made by hand (too short to hit by timing)."""
        node = start_node(tmp_path, database_url)
        try:
            kept = httpx.post(f"{node.api}/tensors", params={"name": "kept", "format": "npy"},
                              content=npy_bytes(np.ones(4)), headers=headers(node.owner_token), timeout=30)
            assert kept.status_code == 201
            sigkill(node)
            store = ObjectStore((node.state_dir / "objects").resolve().as_uri())
            store.put_stream("tensors/orphan.safetensors", io.BytesIO(b"x" * 1000))
            store.put_stream("results/orphan.safetensors", io.BytesIO(b"y" * 10))
            temporary = node.state_dir / "objects" / ".tmp" / "dead.part"
            temporary.write_bytes(b"z" * 100)
            staging = node.state_dir / "uploads" / "tmpdead"
            staging.mkdir(parents=True)
            (staging / "upload").write_bytes(b"w" * 100)
            node = restart(node)
            assert leftovers(node) == {"blobs_without_row": [], "rows_without_blob": [], "staging": [],
                                                 "temporaries": []}
            line = recovery_lines(node)[-1]
            assert ("removed 1 upload staging dir(s), 1 temporary object(s), 2 blob(s) without a row, 0 running "
                    "sum(s) of closed cycles; 0 row(s) without a blob") in line
            downloaded = httpx.get(f"{node.api}/tensors/{kept.json()['id']}/data",
                                   headers=headers(node.owner_token), timeout=30)
            assert downloaded.status_code == 200
        finally:
            node.stop()


# ---------------------------------------------------------------------------------------- the approvals


def _scientist(node: LiveNode, email: str, budget: float | None = None) -> str:
    body: dict[str, Any] = {"email": email, "password": "scientist password 1"}
    if budget is not None:
        body["budget_epsilon"] = budget
    created = httpx.post(f"{node.api}/users", json=body, headers=headers(node.owner_token), timeout=30)
    assert created.status_code == 201, created.text
    return node.login(email, "scientist password 1")


class TestKillDuringApproval:
    def test_approvals_killed_midway_are_all_or_nothing(self, tmp_path: Path, database_url: str,
                                                        kill_log: KillLog) -> None:
        node = start_node(tmp_path, database_url)
        try:
            scientist = _scientist(node, "scientist@example.com")
            tensors = []
            for index in range(12):
                response = httpx.post(f"{node.api}/tensors", params={"name": f"t{index}", "format": "npy"},
                                      content=npy_bytes(np.arange(4.0)), headers=headers(node.owner_token))
                assert response.status_code == 201
                tensors.append(response.json()["id"])
            requests = []
            for tensor in tensors:
                response = httpx.post(f"{node.api}/requests", headers=headers(scientist), json={
                    "kind": "access", "target_type": "tensor", "target_id": tensor, "level": "download",
                    "reason": "analysis"})
                assert response.status_code == 201, response.text
                requests.append(response.json()["id"])
            for delay in (0.15, 0.4):
                approved: list[int] = []

                def approve_all(pending: list[int] = list(requests), done: list[int] = approved) -> None:
                    for request_id in pending:
                        try:
                            r = httpx.post(f"{node.api}/requests/{request_id}/approve", json={"note": "ok"},
                                           headers=headers(node.owner_token), timeout=30)
                        except httpx.TransportError:
                            return
                        if r.status_code == 200:
                            done.append(request_id)

                approver = threading.Thread(target=approve_all, daemon=True)
                approver.start()
                time.sleep(delay)
                sigkill(node)
                approver.join(timeout=60)
                node = restart(node)
                assert_recovered(node, kill_log, "approval")
                for request_id in approved:  # acknowledged approvals survived, with their grants
                    state = httpx.get(f"{node.api}/requests/{request_id}", headers=headers(node.owner_token))
                    assert state.json()["state"] == "approved"
                requests = [r for r in requests if r not in approved]
        finally:
            node.stop()


# ---------------------------------------------------------------------------------------------- the jobs


class TestKillDuringJob:
    def test_a_job_running_when_the_node_is_killed_fails_clearly_and_leaves_nothing(
            self, ray_node: RayNode, tmp_path: Path, database_url: str, kill_log: KillLog) -> None:
        # A second Node drives the session's Ray cluster (as a cloud Node drives its Ray head service), so
        # killing it leaves the cluster to the other tests.
        address = (ray_node.state_dir / "ray-address").read_text().strip()
        node = start_node(tmp_path, database_url, {
            "GRID_NODE_RAY_ENABLED": "true", "GRID_NODE_RAY_ADDRESS": address,
            "GRID_NODE_RAY_TOKEN_FILE": str(ray_node.state_dir / "secrets" / "ray-token"),
            "GRID_NODE_JOB_STALL_SECONDS": "20"})
        try:
            scientist = _scientist(node, "trainer@example.com", budget=50.0)
            rng = np.random.default_rng(1)
            ids = {}
            for role, array in (("features", rng.normal(size=(4000, 16)).astype(np.float32)),
                                ("labels", rng.integers(0, 2, size=4000).astype(np.int64))):
                response = httpx.post(f"{node.api}/tensors", params={"name": role, "format": "npy"},
                                      content=npy_bytes(array), headers=headers(node.owner_token), timeout=60)
                assert response.status_code == 201, response.text
                ids[role] = response.json()["id"]
            dataset = httpx.post(f"{node.api}/datasets", json={"name": "cohort", "members": ids},
                                 headers=headers(node.owner_token))
            assert dataset.status_code == 201, dataset.text
            granted = httpx.post(f"{node.api}/permissions", headers=headers(node.owner_token), json={
                "subject_type": "user", "subject": "trainer@example.com", "target_type": "dataset",
                "target_id": dataset.json()["id"], "level": "compute"})
            assert granted.status_code == 201, granted.text
            spec = {"layers": [{"type": "Linear", "in_features": 16, "out_features": 64}, {"type": "ReLU"},
                               {"type": "Linear", "in_features": 64, "out_features": 2}]}
            job = httpx.post(f"{node.api}/jobs/train", headers=headers(scientist), timeout=60, json={
                "spec": spec, "dataset": "cohort", "epochs": 200, "batch_size": 64,
                "dp": {"noise_multiplier": 5.0}})
            assert job.status_code == 201, job.text
            job_id = job.json()["id"]
            deadline = time.monotonic() + 180
            while httpx.get(f"{node.api}/jobs/{job_id}", headers=headers(scientist)).json()["state"] != "running":
                assert time.monotonic() < deadline, "the job never started"
                time.sleep(0.5)
            time.sleep(2)
            sigkill(node)
            node = restart(node)
            state = httpx.get(f"{node.api}/jobs/{job_id}", headers=headers(node.owner_token)).json()
            assert state["state"] == "failed", state
            assert "restarted" in json.dumps(state) or "node_stopped" in json.dumps(state)
            assert_recovered(node, kill_log, "job")
        finally:
            node.stop()

