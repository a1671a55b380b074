"""Training overhead: a gridctl job against plain torch, and a DP job against Opacus used directly.

    python bench/training.py [--rows 20000] [--epochs 3] [--repeats 3] [--no-ray]

Four timings on the same data (a synthetic 3-class problem, an MLP 20-64-3, batch 128, SGD):

1. plain torch: the textbook loop (shuffled mini-batches, cross-entropy, SGD);
2. the job without DP: `grid_runtime.compute.tasks.run_job` as a Ray task on a local Ray node, reading its
   inputs from an object store and writing the weights back (what a Worker runs), timed from submission to the
   last report; and the trainer alone (`compute.training.train`, no Ray, no store) to split the overhead;
3. Opacus directly: `PrivacyEngine.make_private` with Poisson sampling, σ = 1.0, C = 1.0;
4. the job with DP: the same settings through `run_job` (and the trainer alone).

It prints each median and the ratios job / plain torch and DP job / Opacus. torch runs on one thread
everywhere (a job's task has 1 CPU). The Ray node here is a throwaway local one (`ray.init()`), stopped with
`ray.shutdown()` (only its own processes).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

FEATURES, HIDDEN, CLASSES = 20, 64, 3
BATCH, LR, SIGMA, CLIP = 128, 0.1, 1.0, 1.0


def problem(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(rows, FEATURES, generator=generator)
    w = torch.randn(FEATURES, CLASSES, generator=generator)
    return x, (x @ w).argmax(dim=1)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))


SPEC = {"layers": [{"type": "Linear", "in_features": FEATURES, "out_features": HIDDEN}, {"type": "ReLU"},
                   {"type": "Linear", "in_features": HIDDEN, "out_features": CLASSES}]}


def plain_torch(x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(epochs):
        for indices in torch.randperm(len(x)).split(BATCH):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[indices]), y[indices]).backward()
            optimizer.step()


def opacus_direct(x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    engine = PrivacyEngine(accountant="rdp")
    model, optimizer, loader = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                                   noise_multiplier=SIGMA, max_grad_norm=CLIP, poisson_sampling=True)
    for _ in range(epochs):
        for xb, yb in loader:
            if len(xb) == 0:
                continue
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()


def trainer(x: torch.Tensor, y: torch.Tensor, epochs: int, dp: bool) -> None:
    from grid_runtime.compute import builder, training

    settings = training.TrainingSettings(loss="cross_entropy", optimizer="sgd", lr=LR, epochs=epochs,
                                         batch_size=BATCH, dp=training.DPSettings(SIGMA, CLIP) if dp else None)
    training.train(builder.build_module(SPEC), x, y, settings)


class RayJobs:
    """run_job as a Ray task on a throwaway local Ray node, inputs in a file object store."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, workdir: Path) -> None:
        import ray

        from grid_runtime.compute import tasks
        from grid_runtime.core.storage import open_store

        self.store_url = (workdir / "objects").as_uri()
        store = open_store(self.store_url)
        self.inputs = {}
        for role, tensor in (("features", x), ("labels", y)):
            stored = store.put_stream(f"tensors/{role}.safetensors", _bytes_io(save({"tensor": tensor})))
            self.inputs[role] = {"key": stored.key, "sha256": stored.sha256}
        ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 _temp_dir=tempfile.mkdtemp(prefix="grid-bench-ray-"))
        self.remote = ray.remote(max_retries=0)(tasks.run_job)
        self.rows = len(x)

    def run(self, epochs: int, dp: bool) -> None:
        import ray

        payload: dict[str, Any] = {
            "job_id": 0, "kind": "train", "inputs": self.inputs, "spec": SPEC, "cpus": 1, "delta": 1e-5,
            "store_url": self.store_url,
            "settings": {"loss": "cross_entropy", "optimizer": "sgd", "lr": LR, "epochs": epochs,
                         "batch_size": BATCH, "seed": None,
                         "dp": {"noise_multiplier": SIGMA, "max_grad_norm": CLIP} if dp else None}}
        last: dict[str, Any] = {}
        for ref in self.remote.options(num_cpus=1).remote(payload):
            last = ray.get(ref)
        if last.get("type") != "done":
            raise RuntimeError(f"the job did not finish: {last}")

    def close(self) -> None:
        import ray

        ray.shutdown()


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: imports, first allocations, Ray's worker process
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray task timings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    x, y = problem(args.rows)
    e, r = args.epochs, args.repeats
    figures = {
        "plain torch": median_seconds(lambda: plain_torch(x, y, e), r),
        "trainer, no DP": median_seconds(lambda: trainer(x, y, e, dp=False), r),
        "Opacus directly": median_seconds(lambda: opacus_direct(x, y, e), r),
        "trainer, DP": median_seconds(lambda: trainer(x, y, e, dp=True), r),
    }
    if not args.no_ray:
        with tempfile.TemporaryDirectory() as workdir:
            jobs = RayJobs(x, y, Path(workdir))
            try:
                figures["job (Ray task), no DP"] = median_seconds(lambda: jobs.run(e, dp=False), r)
                figures["job (Ray task), DP"] = median_seconds(lambda: jobs.run(e, dp=True), r)
            finally:
                jobs.close()
    print(f"{args.rows} rows x {FEATURES} features, MLP {FEATURES}-{HIDDEN}-{CLASSES}, batch {BATCH}, "
          f"{e} epochs, median of {r}, 1 torch thread")
    for name, seconds in figures.items():
        print(f"  {name:<24} {seconds:7.3f} s")
    print("ratios:")
    print(f"  trainer / plain torch            {figures['trainer, no DP'] / figures['plain torch']:.2f}")
    print(f"  DP trainer / Opacus directly     {figures['trainer, DP'] / figures['Opacus directly']:.2f}")
    if not args.no_ray:
        print(f"  job without DP / plain torch     {figures['job (Ray task), no DP'] / figures['plain torch']:.2f}")
        print(f"  DP job / Opacus directly         {figures['job (Ray task), DP'] / figures['Opacus directly']:.2f}")


if __name__ == "__main__":
    main()
