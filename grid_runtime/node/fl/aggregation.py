"""Where a cycle whose updates are in the object store is aggregated: on a Worker when one is alive, else on the Node.

- With a Ray cluster (the Node is its driver) and a live Worker (a Ray node with the ``grid_worker`` resource), the
  cycle's ``fedavg.CycleAggregation`` is handed to a Ray task (``compute.tasks.aggregate_fl_cycle``) that needs that
  resource, so it runs on a Worker and never on the head. It reserves no CPU (``num_cpus=0``): a few seconds of numpy
  that must not queue behind hour-long training jobs holding the Workers' CPUs.
- **A Worker lost** mid-aggregation (Ray's NodeDiedError, WorkerCrashedError and the like, as the job runner counts
  them) or a task silent for ``fl_aggregation_timeout_seconds`` is retried on a Worker, up to ``job_max_attempts``
  attempts in all, like a job. After that, or when no Worker is alive, or when the task failed for another reason,
  **the Node aggregates the same stored updates itself** (the same function, ``fedavg.aggregate_stored``). Each
  attempt writes a key of its own (a task given up on may still be running and write later: it can never replace
  the checkpoint that is recorded), and the keys of the attempts given up on are deleted; one written after that
  names no row and is removed at the next start.
- Ray's own retries are off (``max_retries=0``): a retry is decided here and counted in ``Aggregated.attempts``.

Nothing here holds the database: the caller reads what to aggregate in one transaction and records the result in
another (``service.pending_aggregation``, ``service.settle``), under the process's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grid_runtime.core.lazy import LazyModule
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore

if TYPE_CHECKING:
    from grid_runtime.compute import fedavg
else:
    fedavg = LazyModule("grid_runtime.compute.fedavg")

log = logging.getLogger("grid_runtime.node.fl")
LOST_ERRORS = ("NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError", "RaySystemError",
               "ObjectFetchTimedOutError", "LocalRayletDiedError", "ActorDiedError")
"""Ray's errors that mean the Worker (or its process) went away, not that the aggregation failed."""
NODE, WORKER = "node", "worker"


class WorkerLost(RuntimeError):
    """The Worker running an aggregation went away, or did not answer in time."""


@dataclass(frozen=True)
class Aggregated:
    """A cycle's new checkpoint, written to the object store, and where it was made."""

    cycle_id: int
    key: str
    sha256: str
    size: int
    updates: int
    seconds: float
    on: str  # NODE or WORKER
    worker: str | None  # the Ray node id of the Worker that made it
    attempts: int  # tasks handed to Workers for this cycle (0: none was alive, or no cluster)

    def figures(self) -> dict[str, Any]:
        """What the audit log keeps (officers see it; the host sees ``on`` in the cycle's figures)."""
        return {"on": self.on, "worker": self.worker, "attempts": self.attempts, "updates": self.updates,
                "seconds": round(self.seconds, 3)}


_REMOTE: Any = None


def _remote() -> Any:
    global _REMOTE
    if _REMOTE is None:
        import ray

        from grid_runtime.compute import tasks

        _REMOTE = ray.remote(max_retries=0)(tasks.aggregate_fl_cycle)
    return _REMOTE


def live_workers() -> int:
    """The Workers of the cluster that are alive now."""
    import ray

    from grid_runtime.compute.cluster import WORKER_RESOURCE

    return sum(1 for node in ray.nodes() if node.get("Alive") and WORKER_RESOURCE in node.get("Resources", {}))


def is_lost(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in LOST_ERRORS or "Died" in name or "Crashed" in name


def run_on_worker(job: fedavg.CycleAggregation, settings: NodeSettings) -> dict[str, Any]:
    """One attempt on a Worker: the task's answer, or WorkerLost (its Worker died, or no answer in time)."""
    import ray
    from ray.exceptions import GetTimeoutError

    from grid_runtime.compute.cluster import WORKER_RESOURCE

    ref = _remote().options(num_cpus=0, resources={WORKER_RESOURCE: 0.01},
                            name=f"grid-fl-aggregate-{job.process_id}-{job.cycle_id}").remote(
        job.to_json(), settings.resolved_object_store_url, settings.object_store_options or {})
    try:
        return dict(ray.get(ref, timeout=settings.fl_aggregation_timeout_seconds))
    except GetTimeoutError:
        with contextlib.suppress(Exception):  # already gone with its Worker: nothing left to stop
            ray.cancel(ref, force=True)
        raise WorkerLost(f"no answer within {settings.fl_aggregation_timeout_seconds:g}s") from None
    except Exception as exc:
        if is_lost(exc):
            raise WorkerLost(type(exc).__name__) from None
        raise


def aggregate(job: fedavg.CycleAggregation, *, store: ObjectStore, settings: NodeSettings, cluster: bool,
              on_worker: Callable[[fedavg.CycleAggregation, NodeSettings], dict[str, Any]] = run_on_worker,
              workers: Callable[[], int] = live_workers) -> Aggregated:
    """Aggregate ``job`` on a Worker when ``cluster`` has one alive (retrying a lost one), else on the Node (see the
    module's docstring). Raises what the Node's own attempt raises (a stored update unreadable: the cycle stays
    open and the next settling tries again)."""
    abandoned: list[str] = []
    try:
        return _aggregate(job, store=store, settings=settings, cluster=cluster, on_worker=on_worker, workers=workers,
                          abandoned=abandoned)
    finally:
        for key in abandoned:
            with contextlib.suppress(Exception):
                store.delete(key)


def attempt_key(job: fedavg.CycleAggregation, attempt: int) -> str:
    """The key a Worker's ``attempt`` writes (the Node's own attempt writes ``job.output_key``)."""
    return f"{job.output_key.removesuffix('.safetensors')}-{attempt}.safetensors"


def _aggregate(job: fedavg.CycleAggregation, *, store: ObjectStore, settings: NodeSettings, cluster: bool,
               on_worker: Callable[[fedavg.CycleAggregation, NodeSettings], dict[str, Any]],
               workers: Callable[[], int], abandoned: list[str]) -> Aggregated:
    attempts = 0
    while cluster and attempts < settings.job_max_attempts:
        try:
            if not workers():
                break
        except Exception:  # noqa: BLE001 - the cluster cannot say: the Node does it
            log.warning("could not list the Workers; the Node aggregates cycle %s itself", job.cycle_id,
                        exc_info=True)
            break
        attempts += 1
        task = dataclasses.replace(job, output_key=attempt_key(job, attempts))
        try:
            done = on_worker(task, settings)
        except WorkerLost as exc:
            abandoned.append(task.output_key)
            log.warning("the Worker aggregating cycle %s was lost (%s) on attempt %d of %d", job.cycle_id, exc,
                        attempts, settings.job_max_attempts)
            continue
        except Exception:  # noqa: BLE001 - not the Worker's loss: the Node tries the same updates itself
            abandoned.append(task.output_key)
            log.warning("aggregating cycle %s on a Worker failed; the Node aggregates it", job.cycle_id,
                        exc_info=True)
            break
        return Aggregated(cycle_id=job.cycle_id, key=str(done["key"]), sha256=str(done["sha256"]),
                          size=int(done["size"]), updates=int(done["updates"]), seconds=float(done["seconds"]),
                          on=WORKER, worker=str(done["node_id"]), attempts=attempts)
    done = fedavg.aggregate_stored(store, job)
    return Aggregated(cycle_id=job.cycle_id, key=str(done["key"]), sha256=str(done["sha256"]), size=int(done["size"]),
                      updates=int(done["updates"]), seconds=float(done["seconds"]), on=NODE, worker=None,
                      attempts=attempts)
