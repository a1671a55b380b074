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

    python bench/fl_cycle.py [--parameters 1000000] [--clients 100 1000] [--dp]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from safetensors.numpy import save

from grid_runtime.compute.fedavg import Layout, gaussian_noise, to_safetensors
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parameters", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--dp", action="store_true", help="clip each update and add Gaussian noise to the sum")
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
    with tempfile.TemporaryDirectory() as tmp:
        for clients in args.clients:
            row = run(layout, clients, dp=args.dp, workdir=Path(tmp), trace=False)
            row["peak_mib"] = run(layout, clients, dp=args.dp, workdir=Path(tmp), trace=True)["peak_mib"]
            print(f"{row['clients']:>8} {row['seconds']:>9.2f} {row['per_update_ms']:>10.2f} {row['peak_mib']:>9.1f} "
                  f"{row['checkpoint_mib']:>15.1f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"resident peak of the whole run (ru_maxrss): {rss:.0f} MiB; "
          f"goal: 1,000 updates in <= 5 s, peak flat in the number of clients "
          f"(update {4 * layout.size / 2**20:.1f} MiB, running sum {8 * (layout.size + 2) / 2**20:.1f} MiB, "
          f"{layout.size / 1e6:.1f}M parameters)")


if __name__ == "__main__":
    main()
