"""The Node's start path carries no heavy import (issue 11: healthy in <= 2 s from `gridctl deploy local`):
numpy, dp-accounting (and scipy with it), torch, Ray and OpenDP load only when an upload, a job, a charge or a
statistic needs them; the dummy hash that evens out login timing is made, not computed, at import. Alembic loads
only when a database has migrations to run (a fresh one is built from the models, one at head is left alone:
tests/test_fresh_schema.py). The garbage collector, paused while the Node starts, is back on once it serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import OWNER_EMAIL, OWNER_PASSWORD, free_port, wait_healthy

HEAVY = ("numpy", "dp_accounting", "scipy", "torch", "ray", "opendp", "opacus")
NOT_ON_THE_START_PATH = ("alembic", "mako")  # removed from it in issue 11: they must not come back
# The model-spec layer models (about 30 pydantic models built at import) load at the first job, not at start.
NOT_ON_THE_START_PATH_MODULES = ("grid_runtime.compute.spec",)

# `python -m grid_runtime.node` as runpy runs it, plus a SIGUSR1 handler that writes the names in sys.modules
# to $MODULES_DUMP.<n> (n = 1, 2, ...; written to a temporary name, then renamed, so a reader never sees half),
# and the garbage collector's state to $MODULES_DUMP.<n>.gc.
_DUMPING_NODE = """
import gc, json, os, runpy, signal, sys
count = 0
def dump(*_):
    global count
    count += 1
    target = os.environ["MODULES_DUMP"] + "." + str(count)
    with open(target + ".gc", "w") as out:
        json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, out)
    with open(target + ".tmp", "w") as out:
        json.dump(sorted(sys.modules), out)
    os.replace(target + ".tmp", target)
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["grid_runtime.node"]
runpy.run_module("grid_runtime.node", run_name="__main__", alter_sys=True)
"""


def test_importing_the_node_app_loads_no_heavy_module() -> None:
    code = ("import sys, grid_runtime.node.app, grid_runtime.node.__main__; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == ""


def test_privacy_accounting_still_works_once_loaded_on_first_use() -> None:
    code = ("import sys; from grid_runtime.privacy import accounting, events; "
            "assert 'dp_accounting' not in sys.modules; "
            "e = events.laplace_event(noise_multiplier=1.0); "
            "print(round(accounting.epsilon(e), 3), events.event_to_dict(e)['type'], "
            "round(accounting.calibrate_noise(3.0, sample_rate=0.01, steps=100), 2) > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    epsilon, kind, calibrated = done.stdout.split()
    assert 1.0 <= float(epsilon) < 1.1 and kind == "laplace" and calibrated == "True"


def test_the_dummy_hash_has_the_hashers_parameters_and_never_verifies() -> None:
    from grid_runtime.core import security

    hasher = security._hasher
    assert security._DUMMY_HASH.startswith(
        f"$argon2id$v=19$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}$")
    assert security.verify_password(None, "any password at all") is False
    assert security.verify_password(security.hash_password("right password"), "right password") is True


def _modules_now(process: subprocess.Popen[bytes], dump: Path, number: int) -> set[str]:
    process.send_signal(signal.SIGUSR1)
    target = Path(f"{dump}.{number}")
    deadline = time.monotonic() + 60
    while not target.exists():
        assert process.poll() is None, "the Node exited"
        assert time.monotonic() < deadline, "the Node did not write its module list"
        time.sleep(0.05)
    return set(json.loads(target.read_text()))


def test_a_served_node_loads_heavy_modules_only_at_their_first_use(tmp_path: Path) -> None:
    """The real entry point serving real requests: after start-up, /health, setup, login and a read, none of
    the heavy modules is loaded; the first CSV upload loads numpy (and still no torch, Ray or scipy)."""
    port, dump, log = free_port(), tmp_path / "modules", tmp_path / "node.log"
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(tmp_path / "node"), "GRID_NODE_PORT": str(port),
           "GRID_NODE_RAY_ENABLED": "false", "MODULES_DUMP": str(dump)}
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", _DUMPING_NODE], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, process, log)
        with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
            setup_token = (tmp_path / "node" / "setup-token").read_text().strip()
            client.post("/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                        "password": OWNER_PASSWORD}).raise_for_status()
            login = client.post("/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
            login.raise_for_status()
            client.headers["Authorization"] = f"Bearer {login.json()['token']}"
            assert client.get("/users/me").json()["email"] == OWNER_EMAIL
            assert client.get("/health").status_code == 200

            started = _modules_now(process, dump, 1)
            assert "grid_runtime.node.app" in started and "uvicorn" in started  # the dump is the Node's
            assert sorted(m for m in started if m.split(".")[0] in HEAVY) == []
            assert sorted(m for m in started if m.split(".")[0] in NOT_ON_THE_START_PATH) == []
            assert sorted(m for m in started if m in NOT_ON_THE_START_PATH_MODULES) == []
            collector = json.loads(Path(f"{dump}.1.gc").read_text())
            assert collector["enabled"] is True  # paused for the start only
            assert collector["frozen"] > 50_000  # what the start made is kept out of later collections

            upload = client.post("/tensors", params={"name": "first-csv", "format": "csv"},
                                 content=b"a,b\n1,2\n3,4.5\n")
            assert upload.status_code == 201, upload.text
            assert upload.json()["shape"] == [2, 2]
            after_upload = _modules_now(process, dump, 2)
            assert "numpy" in after_upload
            assert sorted({m.split(".")[0] for m in after_upload} & {"torch", "ray", "scipy", "dp_accounting"}) == []
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_local_deploy_polls_health_through_one_reused_client(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`gridctl deploy local` waits for /health through one client: every poll on the same kept-alive connection,
    one TLS-less context built for the whole wait (issue 11: a context per poll was 70% of the CLI's CPU)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gridctl.sdk import http as sdk_http
    from providers.local import processes, provider

    answers = iter([503, 503, 503, 200])
    seen: list[tuple[str, int]] = []

    class Health(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            seen.append(self.client_address)
            body = b"{}"
            self.send_response(next(answers) if self.path == "/api/v1/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    contexts: list[object] = []
    real_no_tls = sdk_http._no_tls

    def counted_no_tls() -> object:
        contexts.append(1)
        return real_no_tls()

    monkeypatch.setattr(sdk_http, "_no_tls", counted_no_tls)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stand_in = processes.start("node", ["sleep", "60"], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "log")
    try:
        provider.wait_healthy(f"http://127.0.0.1:{server.server_address[1]}", stand_in, tmp_path / "log",
                              timeout=30)
    finally:
        processes.stop(stand_in, timeout=5)
        server.shutdown()
        server.server_close()
    assert len(seen) == 4  # three 503s, then the 200
    assert len(set(seen)) == 1, f"the polls used {len(set(seen))} connections"
    assert len(contexts) == 1


def test_the_local_deploy_asks_for_health_only_once_the_port_is_open(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While the Node starts, `gridctl deploy local` only tries its port every 20 ms (a refused connect costs next to
    nothing, an HTTP attempt through the client does); /health is asked once the port is open, and answered."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from providers.local import processes, provider

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = b"{}"
            self.send_response(200 if self.path == "/api/v1/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    asked: list[float] = []
    real_is_healthy = provider.is_healthy

    def counted_is_healthy(*args: Any, **kwargs: Any) -> bool:
        asked.append(time.monotonic())
        return real_is_healthy(*args, **kwargs)

    monkeypatch.setattr(provider, "is_healthy", counted_is_healthy)
    port = free_port()
    servers: list[ThreadingHTTPServer] = []
    listening: list[float] = []

    def listen_later() -> None:
        time.sleep(0.5)
        server = ThreadingHTTPServer(("127.0.0.1", port), Health)
        listening.append(time.monotonic())
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=listen_later, daemon=True).start()
    stand_in = processes.start("node", ["sleep", "60"], env=dict(os.environ), cwd=tmp_path, log=tmp_path / "log")
    try:
        provider.wait_healthy(f"http://127.0.0.1:{port}", stand_in, tmp_path / "log", timeout=30)
        returned = time.monotonic()
    finally:
        processes.stop(stand_in, timeout=5)
        for server in servers:
            server.shutdown()
            server.server_close()
    assert len(asked) == 1 and asked[0] >= listening[0]  # one request, after the port opened
    assert returned - listening[0] < 5
