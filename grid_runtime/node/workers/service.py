"""Workers as the Node sees them: the live Ray nodes of its cluster, without the head (which has no compute)."""

from __future__ import annotations

from typing import Any

from grid_runtime.node.workers.schemas import WorkerOut, WorkersOut


def list_workers(*, head: Any, runner: Any) -> WorkersOut:
    """Every Ray node that joined as a Worker (alive first), with its resources and load."""
    if head is None:
        return WorkersOut(enabled=False, head_address=None, workers=[], jobs_running=0, tasks_submitted=0)
    from grid_runtime.compute.cluster import cluster_nodes

    rows = [WorkerOut(**{k: v for k, v in node.items() if k != "role"})
            for node in cluster_nodes() if node["role"] == "worker"]
    rows.sort(key=lambda w: (not w.alive, w.node_id))
    return WorkersOut(enabled=True, head_address=head.address, workers=rows,
                      jobs_running=runner.running_jobs() if runner else 0,
                      tasks_submitted=runner.tasks_submitted if runner else 0)
