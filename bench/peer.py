"""The steps of the PySyft comparison of issue 11 (Measured 7), run against gridctl only, printed beside the
figures recorded for PySyft 0.9.5 on the same steps (medians of 3 interleaved runs on this machine; the issue
gives some of them as ratios only, and they are printed as given).

Steps, as a data owner and a data scientist would take them, through the CLI and the SDK:

1. **launch and login**: ``gridctl deploy local`` (a fresh deployment, no Workers; the command returns once the
   Node is healthy and its Owner exists), then ``Node(url).login(owner, password)``.
2. **upload**: ``--datasets`` datasets (100) of ``--rows`` x ``--cols`` float32 (100,000 x 32: 12.8 MB each),
   each a tensor upload (``node.tensors.upload``) and a dataset made of it with its bounds
   (``node.datasets.create``).
3. **list and search**: ``node.datasets.list(limit=100)`` and ``node.search("peer")`` (each the median of
   ``--repeat`` calls).
4. **column means**: with Workers on (``gridctl deploy local --workers 1``: its time is printed too, it is not a
   PySyft step), one round trip for the mean of every column of one dataset as a data scientist: one
   ``POST /jobs/statistics`` with ``columns: "all"`` (one job, one composed charge), waiting for the result and
   reading its values; the result leaves the Node through a release request, which the Owner approves at once
   (inside the timed round trip). The first and a second round trip are both printed. The first starts ``--settle``
   seconds (default 0) after the Workers are on, as a person would a little later: a Worker warms the Ray worker
   process its jobs run in when it joins (torch imported there, logged by the Node), and a job submitted during
   that warm-up waits for it, while one submitted later starts warm. With ``--settle 0`` the first job overlaps the
   warm-up. The Node's log lines about warmed Workers are printed.

The Node's and the Worker's resident memory (VmRSS of their process trees) are printed at the end, and the load
average beside the figures. The deployment is destroyed and purged afterwards (its processes stopped by pid).
Scale down for CI-sized runs with ``--datasets 5 --rows 10000``.

    python bench/peer.py [--datasets 100] [--rows 100000] [--cols 32] [--repeat 5] [--settle 0] [--skip-means]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.deploy_local import free_port, tree_rss_mb  # noqa: E402  (path tweak above)
from gridctl.sdk.node import Node  # noqa: E402
from gridctl.sdk.releases import ReleaseNotApproved  # noqa: E402

GRIDCTL = [str(Path(sys.executable).with_name("gridctl"))]
OWNER, PASSWORD = "owner@localhost", "bench-password-123"
SCIENTIST, SCIENTIST_PASSWORD = "scientist@example.com", "scientist password 1"
# PySyft 0.9.5, as recorded in issue 11 (Measured 7): seconds, or the ratio the issue gives instead.
PYSYFT = {
    "launch and login": "1.26 s",
    "upload 100 datasets of 100,000 x 32": "gridctl was 25x faster per 12.8 MB dataset",
    "list 100 datasets": "gridctl was 6-12x faster",
    "search 100 datasets": "gridctl was 6-12x faster",
    "all column means, one round trip": "6.7 s",
}


def timed(step: object) -> tuple[float, object]:
    start = time.perf_counter()
    value = step() if callable(step) else None
    return time.perf_counter() - start, value


def gridctl(env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([*GRIDCTL, *args], env=env, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"gridctl {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cols", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between turning Workers on and the first job [0]")
    parser.add_argument("--skip-means", action="store_true", help="no Workers: steps 1-3 only")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="gpb"))  # short: Ray's unix sockets live under the state dir
    port = free_port()
    # δ below 1/(10 N) for N = --rows, or the Node refuses statistics on the dataset (its δ must not let a
    # mechanism release whole rows); the Node started by `deploy local` inherits the variable.
    delta = min(1e-5, 10 ** math.floor(math.log10(1 / (10 * args.rows))))
    env = {**os.environ, "GRIDCTL_HOME": str(home), "GRIDCTL_OWNER_PASSWORD": PASSWORD, "GRID_NODE_DELTA": f"{delta:g}"}
    rows: list[tuple[str, str]] = []
    load_start = os.getloadavg()
    try:
        launch = gridctl(env, "deploy", "local", "--name", "peer", "--port", str(port), "--yes")
        url = f"http://127.0.0.1:{port}"
        owner = Node(url)
        login, _ = timed(lambda: owner.login(OWNER, PASSWORD))
        rows.append(("launch and login", f"{launch + login:.2f} s (deploy {launch:.2f} s + login {login:.2f} s)"))

        generator = torch.Generator().manual_seed(0)
        per_dataset = []
        for number in range(args.datasets):
            data = torch.randn(args.rows, args.cols, generator=generator)
            start = time.perf_counter()
            tensor = owner.tensors.upload(data, name=f"peer-{number}", description=f"peer bench table {number}")
            owner.datasets.create(f"peer-{number}", {"features": tensor}, description="peer bench dataset",
                                  bounds={"features": {"lower": -4.0, "upper": 4.0}})
            per_dataset.append(time.perf_counter() - start)
        size_mb = args.rows * args.cols * 4 / 1e6
        rows.append((f"upload {args.datasets} datasets of {args.rows:,} x {args.cols}",
                     f"{sum(per_dataset):.2f} s total, {statistics.median(per_dataset):.3f} s per {size_mb:.1f} MB "
                     f"dataset (median)"))
        listing = [timed(lambda: owner.datasets.list(limit=100))[0] for _ in range(args.repeat)]
        searching = [timed(lambda: owner.search("peer", limit=100))[0] for _ in range(args.repeat)]
        rows.append((f"list {args.datasets} datasets", f"{statistics.median(listing) * 1000:.1f} ms"))
        rows.append((f"search {args.datasets} datasets", f"{statistics.median(searching) * 1000:.1f} ms"))

        workers_on = None
        warm_lines: list[str] = []
        if not args.skip_means:
            workers_on = gridctl(env, "deploy", "local", "--name", "peer", "--workers", "1", "--yes")
            workers_ready = time.perf_counter()
            owner = Node(url)
            owner.login(OWNER, PASSWORD)
            owner.http.post("/users", json={"email": SCIENTIST, "password": SCIENTIST_PASSWORD,
                                            "budget_epsilon": 100.0})
            dataset_id = owner.datasets.get("peer-0")["id"]
            owner.http.post("/permissions", json={"subject_type": "user", "subject": SCIENTIST,
                                                  "target_type": "dataset", "target_id": dataset_id,
                                                  "level": "compute"})
            scientist = Node(url)
            scientist.login(SCIENTIST, SCIENTIST_PASSWORD)

            def means() -> object:
                job = scientist.jobs.statistic("mean", dataset="peer-0", member="features", columns="all",
                                               epsilon=1.0).wait(timeout=600)
                if job.status != "succeeded" or job.result is None:
                    raise SystemExit(f"the means job ended {job.status}: {job.error}")
                try:
                    return job.result.get()
                except ReleaseNotApproved as pending:  # the Owner, as officer, approves the release at once
                    owner.requests.approve(pending.request["id"])
                    return job.result.get()

            time.sleep(max(0.0, args.settle - (time.perf_counter() - workers_ready)))
            first, values = timed(means)
            second, _ = timed(means)
            count = len(values["value"]) if isinstance(values, dict) and isinstance(values.get("value"), list) \
                else args.cols
            rows.append(("all column means, one round trip",
                         f"{first:.2f} s first job ({args.settle:g} s after Workers on), {second:.2f} s second; "
                         f"{count} means in one job"))
            node_log = home / "deployments" / "peer" / "logs" / "node.log"
            warm_lines = [line.strip() for line in node_log.read_text(errors="replace").splitlines()
                          if "[grid_runtime.compute]" in line]

        table = (home / "deployments" / "peer" / "processes.json").read_text()
        import json

        processes = json.loads(table)
        memory = f"Node {tree_rss_mb(processes['node']['pid']):.0f} MB"
        memory += " (with its Ray head)" if not args.skip_means else ""
        for role, process in processes.items():
            if role.startswith("worker-"):
                memory += f", {role} {tree_rss_mb(process['pid']):.0f} MB"
    finally:
        subprocess.run([*GRIDCTL, "destroy", "local", "--name", "peer", "--purge", "--yes"], env=env,
                       capture_output=True, timeout=300, check=False)
        shutil.rmtree(home, ignore_errors=True)

    load = " ".join(f"{x:.2f}" for x in load_start)
    print(f"machine: {os.cpu_count()} CPUs; load average at start {load}, at end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    width = max(len(step) for step, _ in rows)
    print(f"{'step':{width}s}  {'gridctl':60s}  PySyft 0.9.5 (issue 11)")
    for step, figure in rows:
        key = next((k for k in PYSYFT if step.split(" ")[0] == k.split(" ")[0]), "")
        print(f"{step:{width}s}  {figure:60s}  {PYSYFT.get(key, '')}")
    if workers_on is not None:
        print(f"turning Workers on (gridctl deploy local --workers 1, not a PySyft step): {workers_on:.2f} s")
    print(f"memory (VmRSS of the process trees): {memory}")
    for line in warm_lines:
        print(f"Node log: {line}")


if __name__ == "__main__":
    main()
