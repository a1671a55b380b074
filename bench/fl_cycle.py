"""Aggregating a federated-learning cycle (issue 15): 100 and 1,000 client updates of a ~1M-parameter model.

What is timed is the Node's own path for each report once its body has arrived (``grid_runtime.node.fl.service``):
``check_update`` (safetensors parsed without pickle, names, shapes, dtype, finite values and the magnitude bound
checked, flattened) and ``fold`` (added to the cycle's running sum, a memory-mapped file under the state dir),
then the cycle's ``finish`` (the weighted average added to the checkpoint) and writing the new checkpoint as
safetensors. With ``--dp`` each update is also clipped, and Gaussian noise from the secure generator is added.

Updates are made one at a time before each is handed over (not timed), as they would arrive: never all in memory.
Peak memory is Python's (``tracemalloc``, which counts numpy's buffers) during the aggregation, measured in a
second pass (tracing slows every allocation, so the time comes from a pass without it), and the process's resident
peak (``ru_maxrss``) is printed beside it; the goal is 1,000 updates in at most 5 s and a peak
that does not grow with the number of clients.

The stored path (``fl_aggregation=store``, the default with Ray) is measured beside it, on the same updates: the
Node's side of each report (the same check, then the update moved into the object store instead of folded) and
the cycle's aggregation (``fedavg.aggregate_stored``: each update read back from the store, checked, folded, the
average finished and the checkpoint written): on the Node itself (the fallback) and, with ``--worker``, in the
production Ray task on a Worker (``aggregation.run_on_worker``; a Ray head and one Worker of one CPU are started
for it, stopped by their process groups at the end). The Worker's peak memory comes from a second, traced run of
the same function in a Ray task on that Worker. Ratios are against the Node's fold of the same updates.

    python bench/fl_cycle.py [--parameters 1000000] [--clients 100 1000] [--dp] [--worker]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from safetensors.numpy import save

from grid_runtime.compute.fedavg import CycleAggregation, Layout, aggregate_stored, gaussian_noise, to_safetensors
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.fl import service


def layout_for(parameters: int) -> Layout:
    """A two-layer MLP's parameters, about ``parameters`` of them: Linear(d, h) and Linear(h, 10)."""
    hidden = 1000
    inputs = max(1, parameters // hidden - 11)
    return Layout((("0.weight", (hidden, inputs)), ("0.bias", (hidden,)), ("2.weight", (10, hidden)),
                   ("2.bias", (10,))))


def run(layout: Layout, clients: int, *, dp: bool, workdir: Path, trace: bool) -> dict[str, Any]:
    process = SimpleNamespace(parameters=layout.to_json(),
                              dp={"noise_multiplier": 1.0, "clip_norm": 1.0} if dp else None)
    cycle = SimpleNamespace(id=clients)
    settings = SimpleNamespace(state_dir=workdir)
    rng = np.random.default_rng(0)
    checkpoint = np.zeros(layout.size)
    made = 0.0
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    for _ in range(clients):
        t0 = time.perf_counter()
        body = save({name: (rng.standard_normal(shape, dtype=np.float32) * 0.01) for name, shape in layout.parameters})
        made += time.perf_counter() - t0
        delta = service.check_update(process, body)  # type: ignore[arg-type]
        del body
        service.fold(settings, process=process, cycle=cycle, delta=delta, examples=100)  # type: ignore[arg-type]
        del delta
    path = service.accumulator_path(settings, cycle)  # type: ignore[arg-type]
    new = service.accumulator(path, layout.size).finish(checkpoint, noise_std=1.0 if dp else None)
    written = to_safetensors(layout, new)
    seconds = time.perf_counter() - started - made
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    service.discard_accumulator(path)
    return {"clients": clients, "seconds": seconds, "per_update_ms": 1000 * seconds / clients,
            "peak_mib": peak / 2**20, "checkpoint_mib": len(written) / 2**20}


def run_stored(layout: Layout, clients: int, *, dp: bool, workdir: Path, trace: bool,
               cluster: Cluster | None) -> dict[str, Any]:
    """The stored path on the same updates: the Node's side of each report (check, write to the store), then the
    cycle's aggregation on the Node (``cluster`` None) or on a Worker."""
    process = SimpleNamespace(parameters=layout.to_json(),
                              dp={"noise_multiplier": 1.0, "clip_norm": 1.0} if dp else None)
    settings = NodeSettings(state_dir=workdir, object_store_url=(workdir / "objects").resolve().as_uri())
    store = ObjectStore(settings.resolved_object_store_url)
    start = to_safetensors(layout, np.zeros(layout.size))
    store.put_stream("fl/checkpoints/start.safetensors", io.BytesIO(start))
    rng = np.random.default_rng(0)
    body_file = workdir / "update"
    made, keys = 0.0, []
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    for index in range(clients):
        t0 = time.perf_counter()
        body_file.write_bytes(save({name: (rng.standard_normal(shape, dtype=np.float32) * 0.01)
                                    for name, shape in layout.parameters}))  # the upload, already received
        made += time.perf_counter() - t0
        service.check_update(process, body_file.read_bytes())  # type: ignore[arg-type]
        key = service.update_key(1, clients, index)
        store.move_file(key, body_file)  # the route's staging file, renamed into a local store
        keys.append((key, 1.0 if dp else 100.0))
    reports = time.perf_counter() - started - made
    node_peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    job = CycleAggregation(process_id=1, cycle_id=clients, parameters=layout.to_json(),
                           checkpoint_key="fl/checkpoints/start.safetensors",
                           checkpoint_sha256=hashlib.sha256(start).hexdigest(), updates=keys,
                           output_key="fl/checkpoints/new.safetensors", clip_norm=1.0 if dp else None,
                           noise_std=1.0 if dp else None, max_abs=service.MAX_UPDATE_VALUE)
    aggregation_peak = 0
    t0 = time.perf_counter()
    if cluster is None:
        if trace:
            tracemalloc.start()
        aggregate_stored(store, job)
        if trace:
            aggregation_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    elif trace:
        aggregation_peak = cluster.traced(job, settings)
    else:
        from grid_runtime.node.fl import aggregation

        done = aggregation.run_on_worker(job, settings)
        assert done["node_id"] in cluster.workers, "the aggregation did not run on the Worker"
    aggregate = time.perf_counter() - t0
    store.delete_prefix(service.updates_prefix(1, clients))
    store.delete("fl/checkpoints/new.safetensors")
    return {"reports": reports, "aggregate": aggregate, "node_peak_mib": max(node_peak, aggregation_peak
            if cluster is None else 0) / 2**20, "worker_peak_mib": aggregation_peak / 2**20 if cluster else 0.0}


class Cluster:
    """A Ray head (no CPUs) driven by this process and one Worker of one CPU, in a temporary state dir."""

    def __init__(self, state_dir: Path) -> None:
        from grid_runtime.compute.cluster import HeadConfig, RayHead

        self.head = RayHead(HeadConfig(port=0), state_dir=state_dir)
        self.head.start()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "grid_runtime.compute.cluster", "worker", "--address", self.head.address,
             "--token-file", str(self.head.token_path), "--num-cpus", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import ray

        from grid_runtime.compute.cluster import WORKER_RESOURCE

        deadline = time.monotonic() + 180
        while True:
            self.workers = {n["NodeID"] for n in ray.nodes() if n.get("Alive") and WORKER_RESOURCE in n["Resources"]}
            if self.workers:
                break
            assert time.monotonic() < deadline and self.worker.poll() is None, "the Worker did not join"
            time.sleep(0.5)
        self._traced = ray.remote(max_retries=0)(_traced_aggregate)

    def warm(self) -> None:
        """One tiny task first: Ray starts the Worker's process and imports what the aggregation task needs (torch
        too, for DP's noise), as a Worker warmed for jobs has it (``cluster.WorkerWarmer``)."""
        import ray

        from grid_runtime.compute.cluster import WORKER_RESOURCE

        ray.get(self._traced.options(num_cpus=0, resources={WORKER_RESOURCE: 0.01}).remote(None, "", {}))

    def traced(self, job: CycleAggregation, settings: NodeSettings) -> int:
        import ray

        from grid_runtime.compute.cluster import WORKER_RESOURCE

        done = ray.get(self._traced.options(num_cpus=0, resources={WORKER_RESOURCE: 0.01}).remote(
            job.to_json(), settings.resolved_object_store_url, settings.object_store_options))
        return int(done["peak"])

    def stop(self) -> None:
        from grid_runtime.compute.cluster import stop_group

        stop_group(self.worker.pid)
        self.head.stop()


def _traced_aggregate(payload: dict[str, Any] | None, url: str, options: dict[str, Any]) -> dict[str, Any]:
    """On the Worker: ``aggregate_stored`` under tracemalloc (its Python peak); ``None``: only import."""
    from grid_runtime.compute import fedavg
    from grid_runtime.core.storage import open_store

    if payload is None:  # warm: what a Worker warmed for jobs has imported (torch: DP's noise generator)
        import grid_runtime.compute.tasks  # noqa: F401

        fedavg.gaussian_noise(1, 1.0)
        return {"peak": 0}
    tracemalloc.start()
    fedavg.aggregate_stored(open_store(url, options), fedavg.CycleAggregation.from_json(payload))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parameters", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--dp", action="store_true", help="clip each update and add Gaussian noise to the sum")
    parser.add_argument("--worker", action="store_true",
                        help="also aggregate the stored path on a Worker (starts a Ray head and one Worker)")
    args = parser.parse_args()
    layout = layout_for(args.parameters)
    print(f"model: {layout.size:,} parameters ({4 * layout.size / 2**20:.1f} MiB as float32); "
          f"central DP: {'on' if args.dp else 'off'}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    print(f"{'clients':>8} {'seconds':>9} {'ms/update':>10} {'peak MiB':>9} {'checkpoint MiB':>15}")
    if args.dp:
        gaussian_noise(1, 1.0)  # import torch and the trainer's generator before timing (the Node's first DP cycle)
    folds: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clients in args.clients:
            row = run(layout, clients, dp=args.dp, workdir=Path(tmp), trace=False)
            row["peak_mib"] = run(layout, clients, dp=args.dp, workdir=Path(tmp), trace=True)["peak_mib"]
            folds[clients] = row
            print(f"{row['clients']:>8} {row['seconds']:>9.2f} {row['per_update_ms']:>10.2f} {row['peak_mib']:>9.1f} "
                  f"{row['checkpoint_mib']:>15.1f}")
    print("\nthe stored path on the same updates (reports: the Node's check and move into the object store; "
          "aggregate: read back, checked, folded, finished, written; ratio: (reports + aggregate) / the fold above)")
    print(f"{'where':>8} {'clients':>8} {'reports s':>10} {'aggregate s':>12} {'total s':>8} {'ratio':>6} "
          f"{'Node peak MiB':>14} {'Worker peak MiB':>16}")
    cluster = None
    with tempfile.TemporaryDirectory(prefix="grid-bench-") as tmp:
        try:
            if args.worker:
                cluster = Cluster(Path(tmp) / "ray-state")
                cluster.warm()
            for where, on in (("node", None), ("worker", cluster)) if cluster else (("node", None),):
                for clients in args.clients:
                    row = run_stored(layout, clients, dp=args.dp, workdir=Path(tmp), trace=False, cluster=on)
                    traced = run_stored(layout, clients, dp=args.dp, workdir=Path(tmp), trace=True, cluster=on)
                    total = row["reports"] + row["aggregate"]
                    print(f"{where:>8} {clients:>8} {row['reports']:>10.2f} {row['aggregate']:>12.2f} {total:>8.2f} "
                          f"{total / folds[clients]['seconds']:>6.2f} {traced['node_peak_mib']:>14.1f} "
                          f"{traced['worker_peak_mib']:>16.1f}")
        finally:
            if cluster is not None:
                cluster.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"resident peak of the whole run (ru_maxrss): {rss:.0f} MiB; "
          f"goal: 1,000 updates in <= 5 s, peak flat in the number of clients "
          f"(update {4 * layout.size / 2**20:.1f} MiB, running sum {8 * (layout.size + 2) / 2**20:.1f} MiB, "
          f"{layout.size / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
