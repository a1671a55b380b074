"""Workers start warm (issue 11): when a Worker joins, the Node has Ray start the worker process its jobs will
run in and import torch there (`grid_runtime.compute.cluster.WorkerWarmer`, `tasks.warm_up`); that process stays
alive and the next job on that Worker runs in it instead of a cold one. On the session's Ray cluster (a Node with
its head and 2 Workers of one CPU each), observed from outside: the Node's log names a warmed process on every
Worker, and /proc shows those still alive with libtorch mapped."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.processes import children
from tests.ray_cluster import RayNode

WARM_LINE = re.compile(r"Worker (\w+) warm: Ray worker process pid (\d+) ready")


def _ray_worker_processes(root: int) -> set[int]:
    """The Ray worker processes below one Worker's ``ray start`` process (Ray titles them ``ray::IDLE``,
    ``ray::<task>``; started, before the title is set, they run ``default_worker.py``)."""
    tree, found, todo = children(), set(), [root]
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


def _warmed_nodes(log: Path) -> set[str]:
    return {match.group(1) for match in WARM_LINE.finditer(log.read_text(errors="replace"))}


def _warmed_pids(log: Path) -> set[int]:
    return {int(match.group(2)) for match in WARM_LINE.finditer(log.read_text(errors="replace"))}


@pytest.mark.timeout(900)  # the session's cluster may start here: a head, 2 Workers and their warm-ups
def test_every_joined_worker_is_warmed_with_torch_loaded(ray_node: RayNode) -> None:
    """Each Worker gets a warm-up (torch, the DP libraries, a forward and backward pass) in a Ray worker process
    of the Node's driver, named in the Node's log. The session's cluster is shared: other tests' drivers and jobs
    come and go, and Ray retires idle processes above a Worker's CPU count, so a warmed process may be gone by
    now; those still alive must hold torch. That a first job then reuses the warm process is measured by
    ``bench/peer.py`` (the first job's round trip, cold against warm), on a cluster no other driver shares."""
    workers = [w.pid for w in ray_node.workers if w.poll() is None]
    assert workers, "the session's cluster has no Worker left"
    log = ray_node.state_dir / "node.log"
    deadline = time.monotonic() + 240  # two torch imports on a loaded 2-core machine
    while len(_warmed_nodes(log)) < len(workers):
        assert time.monotonic() < deadline, (f"not every Worker was warmed: {_warmed_nodes(log)} for "
                                             f"{len(workers)} Workers; log:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    alive = {pid for w in workers for pid in _ray_worker_processes(w)} & _warmed_pids(log)
    for pid in alive:
        assert "libtorch" in Path(f"/proc/{pid}/maps").read_text(), f"torch is not loaded in warm pid {pid}"
