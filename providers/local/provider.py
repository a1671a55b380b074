"""The ``local`` provider: a Node (later Ray Workers) as background processes on this machine.

Layout of a local deployment's state directory (mode 0700)::

    deployment.json    the DeploymentRecord (provider "local", url, port)
    processes.json     role -> pid, start time, argv, log (see processes.py)
    node/              the Node's own state dir: database, secrets, the one-time setup token
    logs/node.log      the Node's stdout and stderr, appended across restarts

A deployment may instead be a Network (``DeploymentSpec(network=True)``, ``gridctl deploy local network``): the
process ``network`` (``python -m grid_runtime.network``) with its state in ``network/`` and its log in
``logs/network.log``, beside any number of local Nodes under other names. Local Nodes and a local Network talk
over http on 127.0.0.1, so each local Node is started allowing http and loopback Network URLs
(``GRID_NODE_NETWORK_ALLOW_INSECURE``/``_PRIVATE``, with ``GRID_NODE_PUBLIC_URL`` its own URL) and a local
Network allowing such Node URLs, unless the operator's environment says otherwise. As for a Node, the context holds a
named API token of the Owner's.

The Node listens on 127.0.0.1 only. Workers are more entries in ``processes.json`` (``worker-1``...), each a
``ray start --block`` joining the Node's Ray head, started after the Node and stopped before it. The Node starts
its Ray head (its own child process) only once the deployment has Workers (``--workers N``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from providers.base import (
    DeploymentConflict,
    DeploymentRecord,
    DeploymentSpec,
    DeploymentStatus,
    DeployResult,
    Feature,
    PlannedChange,
    Provider,
    ProviderError,
    generate_password,
    make_private_dir,
    utc_timestamp,
)
from providers.local import processes
from providers.local.processes import ProcessTable, TrackedProcess

if TYPE_CHECKING:
    from gridctl.sdk.http import Http

DEFAULT_PORT = 8470  # off the crowded 8000/8080, so a first deploy rarely meets a busy port
DEFAULT_NETWORK_PORT = 8480
HOST = "127.0.0.1"
HEALTH_TIMEOUT = float(os.environ.get("GRIDCTL_LOCAL_START_TIMEOUT", "90"))
# How often a starting Node's port is tried (issue 11; it was an HTTP attempt every 100 ms). A refused connect costs
# ~0.05 ms of CPU, each wake-up more under load: every 10 ms the wait took ~6% of a core from the Node it waits for,
# every 20 ms ~3%, for 5 ms more latency on average.
HEALTH_POLL_SECONDS = 0.02
SETUP_TOKEN_FILE = "setup-token"  # noqa: S105  (a file name; written by the Node at first start)
CLI_TOKEN_NAME = "gridctl-cli"  # noqa: S105  (the name of the context's API token, not a secret)
# Written by the Node (grid_runtime.compute.cluster) in its state dir: where its Ray head listens, and the
# cluster's token. Workers join with both; their names are repeated here because providers do not import
# grid_runtime's internals.
RAY_ADDRESS_FILE = "ray-address"
RAY_TOKEN_FILE = Path("secrets") / "ray-token"  # noqa: S105  (a file name)
WORKER_JOIN_TIMEOUT = float(os.environ.get("GRIDCTL_LOCAL_WORKER_TIMEOUT", "120"))


class LocalProvider(Provider):
    name = "local"
    unsupported: ClassVar[dict[Feature, str]] = {
        Feature.managed_database: "a local Node uses SQLite in its state directory "
                                  "(set GRID_NODE_DATABASE_URL before deploying to use PostgreSQL)",
        Feature.tls: "the local Node listens on 127.0.0.1 only, without TLS",
    }

    def check_credentials(self) -> str | None:
        if importlib.util.find_spec("grid_runtime.node") is None:
            return "grid_runtime is not installed in this Python environment"
        return None

    # --- deploy --------------------------------------------------------------------------------------

    def deploy(self, spec: DeploymentSpec) -> DeployResult:
        self.require(*spec.requested_features())
        state_dir = self.state_dir(spec.name)
        existing = DeploymentRecord.path(state_dir).exists()
        record = self.record(spec.name) if existing else None
        if record is not None and service_of(record) != ("network" if spec.network else "node"):
            raise DeploymentConflict(f"deployment {spec.name!r} is a {service_of(record)}; choose another --name")
        if spec.network:
            if spec.workers:
                raise ProviderError("a Network has no Workers")
            return self._deploy_network(spec, state_dir, record)
        port = spec.port or (int(record.settings["port"]) if record else DEFAULT_PORT)
        table = ProcessTable(state_dir)
        node = table.load().get("node")
        # A local Node runs a Ray head only once it has Workers (asked now, or at an earlier deploy).
        want_ray = spec.workers > 0 or bool(record and record.settings.get("ray"))
        if record and node and processes.is_alive(node) and want_ray and not record.settings.get("ray"):
            self._stop_workers(state_dir)
            processes.stop(node)  # restarted below with its Ray head; the data is kept

        if record and node and processes.is_alive(node):
            if port != int(record.settings["port"]):
                raise DeploymentConflict(
                    f"deployment {spec.name!r} is running on port {record.settings['port']}; "
                    f"run 'gridctl destroy local --name {spec.name}' first to move it to port {port}")
            state = "running"
        else:
            ensure_port_free(port)
            make_private_dir(self.deployments_dir)
            make_private_dir(state_dir)
            record = record or DeploymentRecord(name=spec.name, provider=self.name, url="", created_at=utc_timestamp(),
                                                owner_email=spec.owner_email)
            record.url, record.settings["port"] = f"http://{HOST}:{port}", port
            record.settings["ray"] = want_ray
            if want_ray and not record.settings.get("ray_port"):
                record.settings["ray_port"] = free_ray_port()
            record.save(state_dir)
            self._stop_workers(state_dir)  # Workers of a previous head cannot join the new one
            node = self._start_node(spec.name, state_dir, port,
                                    ray_port=record.settings.get("ray_port") if want_ray else None)
            table.put(node)
            state = "restarted" if existing else "created"

        # Asked now; or, when the Node was (re)started, as many as the deployment had.
        workers = spec.workers or (int(record.settings.get("workers", 0)) if state != "running" else 0)
        if workers:
            self.scale_workers(spec.name, workers)
        result = DeployResult(name=spec.name, provider=self.name, url=record.url, state=state,
                              owner_email=record.owner_email, outputs=self._outputs(state_dir, record, node))
        setup_token_path = state_dir / "node" / SETUP_TOKEN_FILE
        if setup_token_path.exists():  # the Owner does not exist yet: first deploy, or one that failed half-way
            self._set_up_owner(result, spec, setup_token_path.read_text().strip())
            record.owner_email = result.owner_email
            record.save(state_dir)
            result.state = "created"
        return result

    def _deploy_network(self, spec: DeploymentSpec, state_dir: Path, record: DeploymentRecord | None) -> DeployResult:
        """A Network as a background process: started (or restarted, data kept) and its Owner set up once."""
        port = spec.port or (int(record.settings["port"]) if record else DEFAULT_NETWORK_PORT)
        table = ProcessTable(state_dir)
        network = table.load().get("network")
        if record and network and processes.is_alive(network):
            if port != int(record.settings["port"]):
                raise DeploymentConflict(
                    f"deployment {spec.name!r} is running on port {record.settings['port']}; "
                    f"run 'gridctl destroy local --name {spec.name}' first to move it to port {port}")
            state = "running"
        else:
            ensure_port_free(port)
            make_private_dir(self.deployments_dir)
            make_private_dir(state_dir)
            state = "restarted" if record else "created"
            record = record or DeploymentRecord(name=spec.name, provider=self.name, url="", created_at=utc_timestamp(),
                                                owner_email=spec.owner_email)
            record.url, record.settings["port"], record.settings["service"] = f"http://{HOST}:{port}", port, "network"
            record.save(state_dir)
            network_dir, log_dir = state_dir / "network", state_dir / "logs"
            make_private_dir(network_dir)
            make_private_dir(log_dir)
            env = {"GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true",
                   **os.environ, "GRID_NETWORK_STATE_DIR": str(network_dir), "GRID_NETWORK_PORT": str(port),
                   "GRID_NETWORK_HOST": HOST, "GRID_NETWORK_NAME": spec.name, "PYTHONUNBUFFERED": "1"}
            log = log_dir / "network.log"
            network = processes.start("network", [sys.executable, "-m", "grid_runtime.network"], env=env,
                                      cwd=state_dir, log=log)
            try:
                wait_healthy(record.url, network, log)
            except BaseException:
                processes.stop(network, timeout=5)
                raise
            table.put(network)
        result = DeployResult(name=spec.name, provider=self.name, url=record.url, state=state,
                              owner_email=record.owner_email, outputs=self._outputs(state_dir, record, network))
        setup_token_path = state_dir / "network" / SETUP_TOKEN_FILE
        if setup_token_path.exists():
            self._set_up_owner(result, spec, setup_token_path.read_text().strip())
            record.owner_email = result.owner_email
            record.save(state_dir)
            result.state = "created"
        return result

    def _start_node(self, name: str, state_dir: Path, port: int, *, ray_port: int | None = None) -> TrackedProcess:
        node_dir, log_dir = state_dir / "node", state_dir / "logs"
        make_private_dir(node_dir)
        make_private_dir(log_dir)
        url = f"http://{HOST}:{port}"
        env = {"GRID_NODE_PUBLIC_URL": url, "GRID_NODE_NETWORK_ALLOW_INSECURE": "true",
               "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true",  # local Networks are http on 127.0.0.1 too
               **os.environ, "GRID_NODE_STATE_DIR": str(node_dir), "GRID_NODE_PORT": str(port),
               "GRID_NODE_HOST": HOST, "GRID_NODE_NAME": name, "PYTHONUNBUFFERED": "1",
               "GRID_NODE_RAY_ENABLED": "true" if ray_port else "false"}
        if ray_port:
            env["GRID_NODE_RAY_PORT"] = str(ray_port)
        log = log_dir / "node.log"
        node = processes.start("node", [sys.executable, "-m", "grid_runtime.node"], env=env, cwd=state_dir, log=log)
        try:
            wait_healthy(f"http://{HOST}:{port}", node, log)
        except BaseException:
            processes.stop(node, timeout=5)
            raise
        return node

    def _set_up_owner(self, result: DeployResult, spec: DeploymentSpec, setup_token: str) -> None:
        """Create the Owner and a named API token for the context (a Node's or a Network's: the same routes)."""
        from gridctl.sdk.http import Http

        password = spec.owner_password or generate_password()
        http = Http(result.url)  # one client: one connection, one TLS-less context for the four requests
        try:
            http.post("/setup", json={"setup_token": setup_token, "email": spec.owner_email, "password": password})
            session = http.post("/auth/login", json={"email": spec.owner_email, "password": password})
            http.set_token(str(session["token"]))
            token = str(http.post("/tokens", json={"name": CLI_TOKEN_NAME})["token"])
            http.post("/auth/logout")  # the session was only needed to mint the named token
        finally:
            http.close()
        result.owner_email = spec.owner_email.strip().lower()
        result.api_token = token
        result.owner_password = None if spec.owner_password else password
        result.owner_password_generated = spec.owner_password is None

    # --- Workers: Ray nodes joining the Node's head, one process each ----------------------------------

    def workers(self, name: str) -> dict[str, TrackedProcess]:
        """The deployment's Worker processes (role ``worker-N``), alive or not."""
        self.record(name)
        return {role: p for role, p in ProcessTable(self.state_dir(name)).load().items() if role.startswith("worker-")}

    def scale_workers(self, name: str, count: int, *, cpus: float = 1.0) -> DeploymentStatus:
        """Run exactly ``count`` Workers: start new ones (each waits until it joined) or stop the newest."""
        if count < 0:
            raise ProviderError("the number of Workers cannot be negative")
        state_dir = self.state_dir(name)
        table = ProcessTable(state_dir)
        tracked = table.load()
        node = tracked.get("node")
        if node is None or not processes.is_alive(node):
            raise ProviderError(f"deployment {name!r} is not running; run 'gridctl deploy local --name {name}'")
        for role, process in list(tracked.items()):  # forget Workers that died (killed, or their head restarted)
            if role.startswith("worker-") and not processes.is_alive(process):
                del tracked[role]
        table.save(tracked)
        running = sorted((r for r in tracked if r.startswith("worker-")), key=lambda r: int(r.split("-")[1]))
        while len(running) > count:
            role = running.pop()
            processes.stop(tracked[role])
            del tracked[role]
            table.save(tracked)
        while len(running) < count:
            number = max((int(r.split("-")[1]) for r in running), default=0) + 1
            process = self._start_worker(state_dir, f"worker-{number}", cpus)
            table.put(process)
            running.append(process.role)
        record = self.record(name)
        record.settings["workers"] = count
        record.save(state_dir)
        return self.status(name)

    def _stop_workers(self, state_dir: Path) -> None:
        table = ProcessTable(state_dir)
        tracked = table.load()
        for role in [r for r in tracked if r.startswith("worker-")]:
            processes.stop(tracked.pop(role))
        table.save(tracked)

    def remove_worker(self, name: str, role: str) -> None:
        """Stop one Worker by its role (``worker-2``) or pid."""
        table = ProcessTable(self.state_dir(name))
        tracked = table.load()
        match = next((r for r, p in tracked.items() if r.startswith("worker-") and role in (r, str(p.pid))), None)
        if match is None:
            raise ProviderError(f"deployment {name!r} has no Worker {role!r}")
        processes.stop(tracked.pop(match))
        table.save(tracked)
        record = self.record(name)
        record.settings["workers"] = sum(1 for r in tracked if r.startswith("worker-"))
        record.save(self.state_dir(name))

    def _start_worker(self, state_dir: Path, role: str, cpus: float) -> TrackedProcess:
        node_dir = state_dir / "node"
        address_file = node_dir / RAY_ADDRESS_FILE
        if not address_file.exists():
            raise ProviderError(f"the Node of {state_dir.name!r} runs no Ray head: a local Node starts one when it "
                                f"has Workers; run 'gridctl deploy local --name {state_dir.name} --workers N' "
                                "(a restart; the data is kept)")
        argv = [sys.executable, "-m", "grid_runtime.compute.cluster", "worker",
                "--address", address_file.read_text().strip(), "--token-file", str(node_dir / RAY_TOKEN_FILE),
                "--num-cpus", f"{cpus:g}"]
        log = state_dir / "logs" / f"{role}.log"
        offset = log.stat().st_size if log.exists() else 0  # the log is appended across restarts
        worker = processes.start(role, argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=state_dir, log=log)
        # Wait until its raylet is up: `ray start --block` prints this line once the node joined.
        deadline = time.monotonic() + WORKER_JOIN_TIMEOUT
        while "will now block forever" not in log.read_bytes()[offset:].decode(errors="replace"):
            if not processes.is_alive(worker):
                raise ProviderError(f"{role} exited during start-up; last lines of {log}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                processes.stop(worker, timeout=5)
                raise ProviderError(f"{role} did not join within {WORKER_JOIN_TIMEOUT:.0f}s; see {log}")
            time.sleep(0.3)
        return worker

    # --- the rest of the interface -------------------------------------------------------------------

    def preview(self, spec: DeploymentSpec) -> list[PlannedChange]:
        self.require(*spec.requested_features())
        state_dir = self.state_dir(spec.name)
        service = "network" if spec.network else "node"
        if not DeploymentRecord.path(state_dir).exists():
            port = spec.port or (DEFAULT_NETWORK_PORT if spec.network else DEFAULT_PORT)
            return [PlannedChange("create", "directory", str(state_dir)),
                    PlannedChange("start", "process", service, f"python -m grid_runtime.{service} on {HOST}:{port}"),
                    PlannedChange("create", "user", spec.owner_email,
                                  "the Owner, with a named API token")]
        node = ProcessTable(state_dir).load().get(service)
        if node and processes.is_alive(node):
            return [PlannedChange("keep", "process", "node", f"pid {node.pid}")]
        return [PlannedChange("start", "process", "node", "restart; data kept")]

    def destroy(self, name: str, *, purge: bool = False) -> list[PlannedChange]:
        self.record(name)  # raises if unknown
        state_dir = self.state_dir(name)
        table = ProcessTable(state_dir)
        done = []
        tracked = table.load()
        for role in reversed(list(tracked)):  # started Node first, so stop it last
            process = tracked[role]
            if processes.stop(process):
                done.append(PlannedChange("delete", "process", role, f"pid {process.pid} stopped"))
        table.save({})
        if purge:
            shutil.rmtree(state_dir)
            done.append(PlannedChange("delete", "directory", str(state_dir), "data and logs removed"))
        return done

    def status(self, name: str) -> DeploymentStatus:
        record = self.record(name)
        state_dir = self.state_dir(name)
        tracked = ProcessTable(state_dir).load()
        rows = [{"role": role, "pid": p.pid, "alive": processes.is_alive(p), "started_at": p.started_at}
                for role, p in tracked.items()]
        node = tracked.get(service_of(record))
        running = node is not None and processes.is_alive(node)
        return DeploymentStatus(name=name, provider=self.name, url=record.url, running=running,
                                healthy=running and is_healthy(record.url), processes=rows,
                                outputs=self._outputs(state_dir, record, node))

    def _outputs(self, state_dir: Path, record: DeploymentRecord, node: TrackedProcess | None) -> dict[str, Any]:
        return {"url": record.url, "port": record.settings.get("port"), "state_dir": str(state_dir),
                "log": str(state_dir / "logs" / f"{service_of(record)}.log"), "pid": node.pid if node else None,
                "service": service_of(record)}


def service_of(record: DeploymentRecord) -> str:
    """What a local deployment runs: ``node`` (also every deployment made before Networks), or ``network``."""
    return str(record.settings.get("service", "node"))


def free_ray_port() -> int:
    """A port for the Ray head's GCS, below the ephemeral range (see grid_runtime.compute.cluster)."""
    import random

    for _ in range(200):
        candidate = random.SystemRandom().randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind((HOST, candidate))
            except OSError:
                continue
            return candidate
    raise ProviderError("no free port for the Ray head")


def ensure_port_free(port: int) -> None:
    with socket.socket() as sock:
        # As uvicorn does: a port left in TIME_WAIT by a stopped Node is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise DeploymentConflict(
                f"port {port} on {HOST} is already in use ({exc.strerror}); choose another with --port"
            ) from None


def is_healthy(url: str, timeout: float = 2.0, *, http: Http | None = None) -> bool:
    """Whether the Node at ``url`` answers its health check; through ``http`` when given (a poll reuses one
    client: for an http URL it builds no TLS context, which costs more than the request itself)."""
    import httpx

    from gridctl.sdk.http import Http

    client = http or Http(url, timeout=timeout)
    try:
        return client.client.get("/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
    finally:
        if http is None:
            client.close()


def log_tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def accepts_connections(url: str, timeout: float = 1.0) -> bool:
    """Whether something listens at ``url``'s host and port. A refused connection costs microseconds, unlike an
    HTTP request through a client; and the Node (uvicorn) opens its port only once started."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def wait_healthy(url: str, node: TrackedProcess, log: Path, timeout: float = HEALTH_TIMEOUT) -> None:
    """Until the Node at ``url`` answers its health check: its port is tried every ``HEALTH_POLL_SECONDS``,
    and asked for ``/health`` (through one client, on one kept-alive connection) once it accepts connections."""
    from gridctl.sdk.http import Http

    deadline = time.monotonic() + timeout
    http = Http(url, timeout=1.0)
    try:
        while time.monotonic() < deadline:
            if not processes.is_alive(node):
                raise ProviderError(f"the Node exited during start-up; last lines of {log}:\n{log_tail(log)}")
            if accepts_connections(url) and is_healthy(url, timeout=1.0, http=http):
                return
            time.sleep(HEALTH_POLL_SECONDS)
    finally:
        http.close()
    raise ProviderError(f"the Node did not answer {url}/api/v1/health within {timeout:.0f}s; "
                        f"last lines of {log}:\n{log_tail(log)}")

