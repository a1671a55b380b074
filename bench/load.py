"""The Node under a crowd: 50 clients mixing authenticated reads and writes (one in five a write), against
``GET /api/v1/health`` under the same generator and concurrency, on the same real Node, in the same run.

Starts a real Node (uvicorn in a subprocess, tests/live.py's start_live_node) on SQLite, and on PostgreSQL too
when ``GRID_TEST_POSTGRES_URL`` is set (``source /work/pg.env``; a fresh database is made and dropped; with
``GRID_REQUIRE_POSTGRES=1``, as in CI, a missing URL is an error). Load
comes from wrk (C, event-driven; ``--wrk PATH``), so the generator is not the bottleneck. The mix, per
client, in turn: ``GET /users/me``, ``GET /tensors?limit=20`` (a search over seeded tensors),
``GET /requests?limit=20``, ``GET /groups``, and every fifth request ``PATCH /users/{id}`` (a row update
and an audit event), each with an Administrator's API token (one per wrk thread). While the mix runs, a
separate client polls ``/health`` every 50 ms and its latencies are reported.

    python bench/load.py [--clients 50] [--seconds 15] [--threads 2] [--backend sqlite|postgresql|all]
                         [--json PATH] [--report-only]

Prints, for each backend, requests/s and p50/p99 of /health alone and of the mix, the mix's ratio to
/health, the /health latencies during the mix, and non-2xx answers (none expected). ``--json PATH`` also
writes these figures, and which targets held, for scripts/reliability_report.py (``.ci/run`` writes
``.reliability/load.json``). Exits 1 if a target of issue 11 is missed (ratio >= 0.6, mix p99 <= 500 ms,
/health <= 50 ms during the mix, no errors) unless ``--report-only`` (CI: the figures are reported, a miss
does not fail the run; an error in the bench still does).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live import LiveNode, postgres_database, start_live_node  # noqa: E402  (path tweak)
from tests.reliability import recorded_at  # noqa: E402

ADMIN_PASSWORD = "load admin password"

MIX_LUA = r"""
tokens = {%(tokens)s}
uids = {%(uids)s}
local n_threads = 0
function setup(thread)
  n_threads = n_threads + 1
  thread:set("token", tokens[(n_threads - 1) %% #tokens + 1])
  thread:set("uid", uids[(n_threads - 1) %% #uids + 1])
end
local counter = 0
local reads = {"/api/v1/users/me", "/api/v1/tensors?limit=20", "/api/v1/requests?limit=20", "/api/v1/groups"}
function request()
  counter = counter + 1
  local headers = {["Authorization"] = "Bearer " .. token}
  if counter %% 5 == 0 then
    headers["Content-Type"] = "application/json"
    return wrk.format("PATCH", "/api/v1/users/" .. uid, headers, '{"full_name":"load ' .. counter .. '"}')
  end
  return wrk.format("GET", reads[counter %% 4 + 1], headers)
end
"""


@dataclass
class WrkFigures:
    per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> WrkFigures:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return WrkFigures(rate, p50, p99, total, int(non_2xx.group(1)) if non_2xx else 0,
                      errors.group(1).strip() if errors else "none")


@contextmanager
def running_node(state_dir: Path, database_url: str | None) -> Iterator[LiveNode]:
    """A real Node on ``database_url`` (SQLite in ``state_dir`` if None), its Owner set up; stopped after."""
    env = {"GRID_NODE_RAY_ENABLED": "false"}
    if database_url:
        env["GRID_NODE_DATABASE_URL"] = database_url
    state_dir.mkdir(parents=True, mode=0o700)
    node = start_live_node(state_dir, env, timeout=180)  # a loaded CI machine imports the Node slowly
    try:
        yield node
    finally:
        node.stop()


def seed(node: LiveNode, admins: int) -> tuple[list[str], list[int]]:
    """``admins`` Administrators with an API token each, 20 tensors and a group, made by the Owner."""
    import numpy as np

    owner = {"Authorization": f"Bearer {node.owner_token}"}
    with httpx.Client(base_url=node.api, timeout=30) as http:
        for i in range(20):
            buffer = io.BytesIO()
            np.save(buffer, np.arange(64, dtype=np.float32).reshape(8, 8) * i)
            http.post("/tensors", params={"name": f"load-{i}", "tag": ["load"], "format": "npy"},
                      content=buffer.getvalue(), headers=owner).raise_for_status()
        http.post("/groups", json={"name": "load-group"}, headers=owner).raise_for_status()
        tokens, uids = [], []
        for i in range(admins):
            email = f"admin{i}@load.local"
            user = http.post("/users", json={"email": email, "password": ADMIN_PASSWORD, "role": "Administrator"},
                             headers=owner).raise_for_status().json()
            session = http.post("/auth/login", json={"email": email, "password": ADMIN_PASSWORD})
            headers = {"Authorization": f"Bearer {session.raise_for_status().json()['token']}"}
            token = http.post("/tokens", json={"name": "load"}, headers=headers).raise_for_status().json()["token"]
            tokens.append(token)
            uids.append(user["id"])
    return tokens, uids


def wrk(binary: str, url: str, *, clients: int, threads: int, seconds: int, script: Path | None) -> WrkFigures:
    command = [binary, f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    return parse_wrk(output)


def poll_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            start = time.perf_counter()
            http.get(f"{url}/api/v1/health").raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)
            stop.wait(0.05)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MIX = [("GET", "/users/me"), ("GET", "/tensors?limit=20"), ("GET", "/requests?limit=20"), ("GET", "/groups"),
       ("PATCH", "/users/{uid}")]


def cpu_per_request(url: str, pid: int, token: str, uid: int, n: int = 150) -> dict[str, float]:
    """The Node's CPU milliseconds per request, one client, sequential: a figure the machine's load barely
    moves (unlike throughput), and the bound the throughput ratio can reach on one process."""
    costs: dict[str, float] = {}
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for method, path in [("GET", "/health"), *MIX]:
            target = path.format(uid=uid)
            for _ in range(20):  # warm
                http.request(method, target, json={"full_name": "warm"} if method == "PATCH" else None)
            before = _cpu_seconds(pid)
            for i in range(n):
                response = http.request(method, target, json={"full_name": f"n{i}"} if method == "PATCH" else None)
                response.raise_for_status()
            costs[f"{method} {path}"] = (_cpu_seconds(pid) - before) / n * 1000
    return costs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_backend(name: str, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """Load one backend's Node; print the figures and return them, with which targets held."""
    with tempfile.TemporaryDirectory(prefix="grid-load-") as tmp:
        state_dir = Path(tmp) / "state"
        with running_node(state_dir, database_url) as node:
            url, pid = node.url, node.process.pid
            tokens, uids = seed(node, admins=args.threads)
            costs = cpu_per_request(url, pid, tokens[0], uids[0])
            script = Path(tmp) / "mix.lua"
            script.write_text(MIX_LUA % {"tokens": ", ".join(f'"{t}"' for t in tokens),
                                         "uids": ", ".join(str(u) for u in uids)})
            # Warm both paths (connections, caches) before measuring.
            wrk(args.wrk, f"{url}/api/v1/health", clients=args.clients, threads=args.threads, seconds=2, script=None)
            wrk(args.wrk, url, clients=args.clients, threads=args.threads, seconds=2, script=script)
            health = wrk(args.wrk, f"{url}/api/v1/health", clients=args.clients, threads=args.threads,
                         seconds=args.seconds, script=None)
            stop, probe = threading.Event(), list[float]()
            poller = threading.Thread(target=poll_health, args=(url, stop, probe), daemon=True)
            poller.start()
            try:
                mix = wrk(args.wrk, url, clients=args.clients, threads=args.threads, seconds=args.seconds,
                          script=script)
            finally:
                stop.set()
                poller.join()
    ratio = mix.per_second / health.per_second
    print(f"\n{name}: {args.clients} clients, {args.threads} wrk threads, {args.seconds} s each")
    mix_cpu = sum(costs[f"{m} {p}"] for m, p in MIX) / len(MIX)
    print("  Node CPU per request (one client): " + ", ".join(f"{k} {v:.2f} ms" for k, v in costs.items()))
    print(f"  -> the mix costs {mix_cpu:.2f} ms, /health {costs['GET /health']:.2f} ms: "
          f"a CPU-bound ratio of at most {costs['GET /health'] / mix_cpu:.2f} on one process")
    print(f"  /health alone      {health.per_second:8.1f} req/s   p50 {health.p50_ms:7.1f} ms   "
          f"p99 {health.p99_ms:7.1f} ms   non-2xx {health.non_2xx}")
    print(f"  mix (1 in 5 write) {mix.per_second:8.1f} req/s   p50 {mix.p50_ms:7.1f} ms   "
          f"p99 {mix.p99_ms:7.1f} ms   non-2xx {mix.non_2xx}   ({mix.requests} requests)")
    print(f"  ratio mix//health  {ratio:8.2f}   (target >= 0.6)")
    print(f"  /health during mix p50 {statistics.median(probe):.1f} ms   p99 {percentile(probe, 0.99):.1f} ms   "
          f"max {max(probe):.1f} ms   ({len(probe)} probes; target <= 50 ms)")
    if mix.socket_errors != "none" or health.socket_errors != "none":
        print(f"  socket errors: health {health.socket_errors}; mix {mix.socket_errors}")
    errors = mix.non_2xx + health.non_2xx + (mix.socket_errors != "none") + (health.socket_errors != "none")
    targets = {"ratio": ratio >= 0.6, "mix_p99": mix.p99_ms <= 500, "health_during_mix": max(probe) <= 50,
               "no_errors": errors == 0}
    print("  targets: " + ", ".join(f"{k} {'held' if v else 'missed'}" for k, v in targets.items()))
    return {
        "clients": args.clients, "wrk_threads": args.threads, "seconds": args.seconds,
        "health_alone": _rounded(asdict(health)), "mix": _rounded(asdict(mix)), "ratio": round(ratio, 3),
        "health_during_mix": {"p50_ms": round(statistics.median(probe), 1),
                              "p99_ms": round(percentile(probe, 0.99), 1), "max_ms": round(max(probe), 1),
                              "probes": len(probe)},
        "cpu_ms_per_request": {k: round(v, 2) for k, v in costs.items()},
        "cpu_ratio_ceiling": round(costs["GET /health"] / mix_cpu, 2),
        "errors": errors, "targets": targets, "held": all(targets.values()),
    }


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures there as JSON (for scripts/reliability_report.py)")
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 when a target is missed (the figures still say so); errors still fail")
    args = parser.parse_args(argv)
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"{platform.system()} {platform.release()}")
    print(f"machine: {machine}; load average before the run {_load_average()}")
    postgres_url = os.environ.get("GRID_TEST_POSTGRES_URL")
    if args.backend in ("postgresql", "all") and not postgres_url and os.environ.get("GRID_REQUIRE_POSTGRES") == "1":
        print("GRID_REQUIRE_POSTGRES=1 but GRID_TEST_POSTGRES_URL is not set", file=sys.stderr)
        return 2
    backends: dict[str, dict[str, Any]] = {}
    if args.backend in ("sqlite", "all"):
        backends["sqlite"] = run_backend("SQLite", None, args)
    if args.backend in ("postgresql", "all"):
        if not postgres_url:
            print("\nPostgreSQL: skipped (GRID_TEST_POSTGRES_URL is not set; source /work/pg.env)")
        else:
            with postgres_database(postgres_url, "grid_load") as database_url:
                backends["postgresql"] = run_backend("PostgreSQL", database_url, args)
    held = all(figures["held"] for figures in backends.values())
    if args.json:
        recorded = recorded_at()
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "backends": {name: {**figures, "recorded": recorded} for name, figures in backends.items()},
            "machine": machine, "load_average_after": _load_average()}, indent=2) + "\n")
        print(f"wrote {args.json}")
    print("\ntargets held" if held else "\na target was missed")
    return 0 if held or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
