"""The Node under a crowd: 50 clients mixing authenticated reads and writes (one in five a write), against
``GET /api/v1/health`` under the same generator and concurrency, on the same real Node, in the same run.

Starts a real Node (uvicorn in a subprocess, like tests/live.py) on SQLite, and on PostgreSQL too when
``GRID_TEST_POSTGRES_URL`` is set (``source /work/pg.env``; a fresh database is made and dropped). Load
comes from wrk (C, event-driven; ``--wrk PATH``), so the generator is not the bottleneck. The mix, per
client, in turn: ``GET /users/me``, ``GET /tensors?limit=20`` (a search over seeded tensors),
``GET /requests?limit=20``, ``GET /groups``, and every fifth request ``PATCH /users/{id}`` (a row update
and an audit event), each with an Administrator's API token (one per wrk thread). While the mix runs, a
separate client polls ``/health`` every 50 ms and its latencies are reported.

    python bench/load.py [--clients 50] [--seconds 15] [--threads 2] [--backend sqlite|postgresql|all]

Prints, for each backend, requests/s and p50/p99 of /health alone and of the mix, the mix's ratio to
/health, the /health latencies during the mix, and non-2xx answers (none expected). Exits 1 if a target
of issue 11 is missed (ratio >= 0.6, mix p99 <= 500 ms, /health <= 50 ms during the mix).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live import postgres_database  # noqa: E402  (path tweak)

OWNER_EMAIL = "owner@load.local"
OWNER_PASSWORD = "load owner password"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_node(state_dir: Path, database_url: str | None) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(state_dir), "GRID_NODE_PORT": str(port),
           "GRID_NODE_RAY_ENABLED": "false"}
    if database_url:
        env["GRID_NODE_DATABASE_URL"] = database_url
    state_dir.mkdir(parents=True, exist_ok=True)
    log = (state_dir / "node.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Node exited: {(state_dir / 'node.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Node did not become healthy")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def seed(url: str, state_dir: Path, admins: int) -> tuple[list[str], list[int]]:
    """The Owner, ``admins`` Administrators with an API token each, 20 tensors and a group."""
    import numpy as np

    api = f"{url}/api/v1"
    setup_token = (state_dir / "setup-token").read_text().strip()
    with httpx.Client(base_url=api, timeout=30) as http:
        http.post("/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                  "password": OWNER_PASSWORD}).raise_for_status()
        login = http.post("/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
        owner = {"Authorization": f"Bearer {login.raise_for_status().json()['token']}"}
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


def run_backend(name: str, database_url: str | None, args: argparse.Namespace) -> bool:
    with tempfile.TemporaryDirectory(prefix="grid-load-") as tmp:
        state_dir = Path(tmp) / "state"
        with running_node(state_dir, database_url) as (url, pid):
            tokens, uids = seed(url, state_dir, admins=args.threads)
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
    return (ratio >= 0.6 and mix.p99_ms <= 500 and max(probe) <= 50 and mix.non_2xx == 0
            and health.non_2xx == 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    held = True
    if args.backend in ("sqlite", "all"):
        held &= run_backend("SQLite", None, args)
    if args.backend in ("postgresql", "all"):
        if not os.environ.get("GRID_TEST_POSTGRES_URL"):
            print("\nPostgreSQL: skipped (GRID_TEST_POSTGRES_URL is not set; source /work/pg.env)")
        else:
            with postgres_database(os.environ["GRID_TEST_POSTGRES_URL"], "grid_load") as database_url:
                held &= run_backend("PostgreSQL", database_url, args)
    print("\ntargets held" if held else "\na target was missed")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
