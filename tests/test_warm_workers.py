"""Workers start warm (issue 11): when a Worker joins, the Node has Ray start the worker process its jobs will
run in and import torch there (`grid_runtime.compute.cluster.WorkerWarmer`, `tasks.warm_up`); that process stays
alive and the next job on that Worker runs in it instead of a cold one. On the session's Ray cluster (a Node with
its head and 2 Workers of one CPU each), observed from outside: the Node's log names the warmed processes, /proc
shows them alive under the Workers with libtorch mapped, and a job adds no Ray worker process."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gridctl.sdk.node import Node
from tests.ray_cluster import RayNode

WARM_LINE = re.compile(r"Worker (\w+) warm: Ray worker process pid (\d+) ready")
PASSWORD = "warm workers pw 1"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            tree.setdefault(int(raw[raw.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    return tree


def _ray_worker_processes(root: int) -> set[int]:
    """The Ray worker processes below one Worker's ``ray start`` process (Ray titles them ``ray::IDLE``,
    ``ray::<task>``; started, before the title is set, they run ``default_worker.py``)."""
    tree, found, todo = _children(), set(), [root]
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if cmdline.startswith(b"ray::") or b"default_worker.py" in cmdline:
                found.add(pid)
        except OSError:
            continue
    return found


def _warmed_pids(log: Path) -> set[int]:
    return {int(match.group(2)) for match in WARM_LINE.finditer(log.read_text(errors="replace"))}


@pytest.mark.timeout(900)  # the session's cluster may start here: a head, 2 Workers and their warm-ups
def test_joined_workers_are_warm_and_a_job_reuses_their_process(ray_node: RayNode) -> None:
    workers = [w.pid for w in ray_node.workers if w.poll() is None]
    assert workers, "the session's cluster has no Worker left"
    log = ray_node.state_dir / "node.log"
    deadline = time.monotonic() + 240  # two torch imports on a loaded 2-core machine
    while True:
        warmed = _warmed_pids(log)
        if all(_ray_worker_processes(w) & warmed for w in workers):
            break
        assert time.monotonic() < deadline, (f"not every Worker was warmed: warm pids {warmed}, Ray worker "
                                             f"processes {[_ray_worker_processes(w) for w in workers]}; log:\n"
                                             f"{log.read_text()[-3000:]}")
        time.sleep(1)
    for worker in workers:
        for pid in _ray_worker_processes(worker) & warmed:
            assert "libtorch" in Path(f"/proc/{pid}/maps").read_text(), f"torch is not loaded in warm pid {pid}"

    owner = ray_node.owner()
    dataset = owner.http.post("/datasets", json={"name": "warm-check", "visibility": "private"})["id"]
    rows = "\n".join(f"{i % 7}.5,{i % 3}" for i in range(200))
    owner.http.client.post("/tensors", content=f"a,b\n{rows}\n".encode(),
                           params={"name": "warm-check-features", "dataset": "warm-check", "role": "features",
                                   "format": "csv"}).raise_for_status()
    owner.http.put("/datasets/warm-check/bounds", json={"features": {"lower": 0.0, "upper": 8.0}})
    owner.http.post("/users", json={"email": "warm@example.com", "password": PASSWORD, "budget_epsilon": 5.0})
    owner.http.post("/permissions", json={"subject_type": "user", "subject": "warm@example.com",
                                          "target_type": "dataset", "target_id": dataset, "level": "compute"})
    scientist = Node(ray_node.url)
    scientist.login("warm@example.com", PASSWORD)

    before = {w: _ray_worker_processes(w) for w in workers}
    job = scientist.jobs.statistic("mean", dataset="warm-check", member="features", column=0, epsilon=0.5)
    assert job.wait(timeout=180).status == "succeeded", job.error
    for worker in workers:
        started = _ray_worker_processes(worker) - before[worker]
        assert started == set(), f"the job started Ray worker process(es) {started} instead of a warm one"
