"""One real Ray cluster for the whole test session: a Node (its Ray head) in a subprocess and Worker
processes joining it, every process stopped by its process group, never by `ray stop`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gridctl.sdk.node import Node
from tests.live import OWNER_EMAIL, OWNER_PASSWORD, free_port, wait_healthy

WORKER_OBJECT_STORE_BYTES = 100 * 1024**2


@dataclass
class RayNode:
    url: str
    state_dir: Path
    node: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    owner_token: str = ""

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    def owner(self) -> Node:
        return Node(self.url, token=self.owner_token)

    def start_worker(self) -> subprocess.Popen[bytes]:
        address = (self.state_dir / "ray-address").read_text().strip()
        log = (self.state_dir / f"worker-{len(self.workers) + 1}.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "grid_runtime.compute.cluster", "worker", "--address", address,
             "--token-file", str(self.state_dir / "secrets" / "ray-token"), "--num-cpus", "1",
             "--object-store-bytes", str(WORKER_OBJECT_STORE_BYTES)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while sum(w["alive"] for w in self.owner().http.get("/workers")["workers"]) < count:
            assert time.monotonic() < deadline, f"{count} Workers did not join within {timeout:.0f}s"
            assert self.workers[-1].poll() is None, "a Worker exited; see its log in the state dir"
            time.sleep(0.5)

    def stop(self) -> None:
        for worker in self.workers:
            stop_group(worker)
        stop_group(self.node, timeout=60)  # the Node stops its Ray head on the way out


def stop_group(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def start_ray_node(state_dir: Path, *, workers: int) -> RayNode:
    """A Node with Ray, its Owner set up and logged in, and ``workers`` Workers joined one at a time (two
    raylets starting at once on 2 cores time out)."""
    port = free_port()
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(state_dir), "GRID_NODE_PORT": str(port),
           "GRID_NODE_RAY_ENABLED": "true", "GRID_NODE_RAY_PORT": str(free_port()),
           "GRID_NODE_RAY_OBJECT_STORE_BYTES": str(WORKER_OBJECT_STORE_BYTES), "GRID_NODE_JOB_MAX_CONCURRENT": "5",
           "GRID_NODE_JOB_STALL_SECONDS": "20"}
    log = state_dir / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
    ray_node = RayNode(url=f"http://127.0.0.1:{port}", state_dir=state_dir, node=process)
    try:
        wait_healthy(ray_node.url, process, log, timeout=120)
        setup_token = (state_dir / "setup-token").read_text().strip()
        httpx.post(f"{ray_node.api}/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                                  "password": OWNER_PASSWORD}).raise_for_status()
        ray_node.owner_token = httpx.post(f"{ray_node.api}/auth/login", json={
            "email": OWNER_EMAIL, "password": OWNER_PASSWORD}).json()["token"]
        for count in range(1, workers + 1):
            ray_node.start_worker()
            ray_node.wait_for_workers(count)
    except BaseException:
        ray_node.stop()
        raise
    return ray_node
