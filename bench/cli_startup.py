"""How fast the CLI answers: ``gridctl --help`` and an authenticated ``gridctl users list``, in one run beside
the floor each is measured against: ``python -c pass`` (the interpreter's own start-up) and ``curl`` of the
same endpoint with the same token (the Node's own answer, without Python).

Starts its own Node (a uvicorn subprocess with a fresh state dir, as the tests do), runs each command N times
as a fresh process, interleaved (one of each per round, so load on a shared machine hits all alike), and prints
p50 and p90 wall time with the ratio to its floor, the p50 CPU time (user + system) with the ratio to
``python -c pass``'s, and the targets of issue 10 (``--help`` <= 0.15 s, ``users list`` <= 0.3 s, p50 wall).
Exits 1 when a p50 misses its target and ``--check`` is given. ``users list`` runs with GRIDCTL_URL and
GRIDCTL_TOKEN (as in CI), and once more from a saved context (``gridctl login``, as a person would).

    python bench/cli_startup.py [--runs 20] [--check]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from tests.live import OWNER_EMAIL, OWNER_PASSWORD, start_live_node  # noqa: E402  (path tweak)

TARGETS = {"gridctl --help": 0.15, "gridctl users list": 0.30}  # seconds, p50




def run_rounds(cases: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each run of each case; CPU is the child's user + system time, which a loaded
    machine inflates far less than wall time."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv in cases.values():  # warm the file cache, write bytecode, and fail early on a broken command
        subprocess.run(argv, env=env, capture_output=True, check=True)
    for _ in range(runs):
        for name, argv in cases.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            times[name].append((wall, cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--check", action="store_true", help="exit 1 when a p50 misses its target")
    args = parser.parse_args()
    gridctl = shutil.which("gridctl")
    curl = shutil.which("curl")
    if not gridctl:
        sys.exit("the gridctl console script is not installed: pip install -e .")
    if not curl:
        sys.exit("curl is not installed (apt-get install curl)")

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "node"
        state.mkdir()
        node = start_live_node(state, timeout=180)
        try:
            env = {**os.environ, "GRIDCTL_HOME": str(Path(tmp) / "home"), "GRIDCTL_URL": node.url,
                   "GRIDCTL_TOKEN": node.owner_token}
            # A user's Python writes bytecode: without it every run would compile the changed modules again.
            for name in ("GRIDCTL_CONTEXT", "GRIDCTL_OUTPUT", "GRIDCTL_DEBUG", "PYTHONDONTWRITEBYTECODE"):
                env.pop(name, None)
            # the request `gridctl users list` sends: GET /users?limit=50&offset=0 with the bearer token
            endpoint = f"{node.url}/api/v1/users?limit=50&offset=0"
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "gridctl --help": [gridctl, "--help"],
                "curl GET /users": [curl, "-sf", "-o", "/dev/null", "-H", f"Authorization: Bearer {node.owner_token}",
                                    endpoint],
                "gridctl users list": [gridctl, "users", "list"],
                "gridctl users list -o json": [gridctl, "users", "list", "--output", "json"],
                "users list (saved context)": ["env", "-u", "GRIDCTL_URL", "-u", "GRIDCTL_TOKEN",
                                               f"GRIDCTL_HOME={Path(tmp) / 'saved'}", gridctl, "users", "list"],
            }
            subprocess.run([gridctl, "login", node.url, "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD],
                           env={**env, "GRIDCTL_HOME": str(Path(tmp) / "saved")}, capture_output=True, check=True)
            times = run_rounds(cases, env, args.runs)
        finally:
            node.stop()

    floors = {"gridctl --help": "python -c pass", "gridctl users list": "curl GET /users",
              "gridctl users list -o json": "curl GET /users", "users list (saved context)": "curl GET /users"}
    p50 = {name: (statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples))
           for name, samples in times.items()}
    print(f"CLI start-up, {args.runs} runs each (interleaved), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<28} {'p50 ms':>7} {'p90 ms':>7} {'x floor':>8} {'CPU ms':>7} {'x pass':>8} {'target':>11}")
    missed = []
    for name, samples in times.items():
        walls = [w for w, _ in samples]
        p90 = statistics.quantiles(walls, n=10)[-1] if len(walls) > 1 else walls[0]
        wall, cpu = p50[name]
        ratio = cpu_ratio = ""
        if name in floors:
            ratio = f"{wall / p50[floors[name]][0]:.1f}x"
        if name != "python -c pass":
            cpu_ratio = f"{cpu / max(p50['python -c pass'][1], 1e-3):.1f}x"
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"{'ok' if wall <= target else 'MISSED'} {target * 1000:.0f}"
            if wall > target:
                missed.append(name)
        print(f"{name:<28} {wall * 1000:7.1f} {p90 * 1000:7.1f} {ratio:>8} {cpu * 1000:7.1f} {cpu_ratio:>8} "
              f"{verdict:>11}")
    if args.check and missed:
        sys.exit(f"missed the target: {', '.join(missed)}")


if __name__ == "__main__":
    main()
