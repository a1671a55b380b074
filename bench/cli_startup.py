"""How fast the CLI starts: ``gridctl --help`` and ``gridctl users list`` against ``python -c pass``.

Starts its own Node (a uvicorn subprocess with a fresh state dir, as the tests do), runs each command
N times as a fresh process, and prints mean and p50 wall time and the ratio to the interpreter's own
start-up.

    python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live import start_live_node  # noqa: E402  (after the path tweak: bench/ runs as a script)


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    subprocess.run(argv, env=env, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    gridctl = shutil.which("gridctl")
    if not gridctl:
        sys.exit("the gridctl console script is not installed: pip install -e .")

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "node"
        state.mkdir()
        node = start_live_node(state)
        try:
            env = {**os.environ, "GRIDCTL_HOME": str(Path(tmp) / "home"), "GRIDCTL_URL": node.url,
                   "GRIDCTL_TOKEN": node.owner_token}
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "gridctl --help": [gridctl, "--help"],
                "gridctl users list": [gridctl, "users", "list"],
                "gridctl users list -o json": [gridctl, "users", "list", "--output", "json"],
            }
            results = {name: timed(argv, env, args.runs) for name, argv in cases.items()}
        finally:
            node.stop()

    baseline = statistics.mean(results["python -c pass"])
    print(f"CLI start-up, {args.runs} runs each, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'command':<28} {'mean ms':>8} {'p50 ms':>8} {'x baseline':>11}")
    for name, times in results.items():
        mean, p50 = statistics.mean(times), statistics.median(times)
        print(f"{name:<28} {mean * 1000:8.1f} {p50 * 1000:8.1f} {mean / baseline:10.1f}x")


if __name__ == "__main__":
    main()
