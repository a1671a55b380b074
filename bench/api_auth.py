"""What authentication costs a request: ``GET /api/v1/users/me`` with a named API token against the public
``GET /api/v1/health``, on the same real Node (uvicorn in a subprocess, SQLite in a temporary directory).

Both endpoints touch the database (health runs ``SELECT 1``); ``/users/me`` also hashes the token, loads the
token, the user and the role's capabilities. The difference is what every authenticated call pays.

    python bench/api_auth.py [--requests 2000] [--concurrency 8]

Prints requests per second and p50/p99 latency for each endpoint, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

OWNER_EMAIL = "owner@bench.local"
OWNER_PASSWORD = "bench owner password"


@dataclass
class Figures:
    label: str
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_node(state_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(state_dir), "GRID_NODE_PORT": str(port)}
    log = (state_dir / "node.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the Node exited:\n{(state_dir / 'node.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise SystemExit("the Node did not become healthy in 90s")


def owner_api_token(url: str, state_dir: Path) -> str:
    setup_token = (state_dir / "setup-token").read_text().strip()
    httpx.post(f"{url}/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                     "password": OWNER_PASSWORD}).raise_for_status()
    login = httpx.post(f"{url}/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
    login.raise_for_status()
    created = httpx.post(f"{url}/tokens", json={"name": "bench"},
                         headers={"Authorization": f"Bearer {login.json()['token']}"})
    created.raise_for_status()
    return str(created.json()["token"])


def measure(label: str, send: Callable[[httpx.Client], httpx.Response], *, requests: int, concurrency: int,
            make_client: Callable[[], httpx.Client]) -> Figures:
    """``requests`` calls spread over ``concurrency`` threads, each with its own keep-alive client."""
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def one(_: int) -> float:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = make_client()
            with lock:
                clients.append(client)
        start = time.perf_counter()
        response = send(client)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{label}: HTTP {response.status_code} {response.text[:200]}")
        return elapsed

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(min(200, requests))))  # warm-up: connections, caches, the thread pool
        start = time.perf_counter()
        latencies = list(pool.map(one, range(requests)))
        seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    return Figures(label, requests, seconds, latencies)


def _getter(path: str) -> Callable[[httpx.Client], httpx.Response]:
    return lambda client: client.get(path)


def _client_maker(url: str, headers: dict[str, str]) -> Callable[[], httpx.Client]:
    return lambda: httpx.Client(base_url=url, headers=headers, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-api-auth-") as tmp:
        state_dir = Path(tmp)
        process, url = start_node(state_dir)
        try:
            token = owner_api_token(url, state_dir)
            auth = {"Authorization": f"Bearer {token}"}
            authed_path = "/users/me"
            if httpx.get(f"{url}{authed_path}", headers=auth).status_code == 404:
                authed_path = "/tokens"  # before the users domain existed
            results = [
                measure(label, _getter(path), requests=args.requests, concurrency=args.concurrency,
                        make_client=_client_maker(url, headers))
                for label, path, headers in [("GET /health", "/health", {}),
                                             (f"GET {authed_path} (API token)", authed_path, auth)]
            ]
        finally:
            process.terminate()
            process.wait(timeout=15)

    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs; one uvicorn process, SQLite; {args.requests} requests per endpoint, "
          f"{args.concurrency} client threads")
    print(f"{'endpoint':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for fig in results:
        print(f"{fig.label:<34} {fig.per_second:>8.0f} {fig.percentile(0.50):>8.2f} "
              f"{fig.percentile(0.99):>8.2f} {statistics.fmean(fig.latencies_ms):>8.2f}")
    health, authed = results
    print(f"authenticated / health: {authed.per_second / health.per_second:.2f}x the throughput, "
          f"{authed.percentile(0.50) / health.percentile(0.50):.2f}x the p50 latency")


if __name__ == "__main__":
    main()
