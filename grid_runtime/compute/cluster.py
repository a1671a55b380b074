"""The Ray cluster the Workers form: the head beside the Node, Workers joining it, and the Node as its driver.

- The **head** holds no compute (``--num-cpus=0``): jobs only ever run on Workers. The Node starts it as a child
  process (``ray start --head --block`` in its own process group) and stops that group on shutdown, by pid;
  nothing here ever runs ``ray stop``, which would kill every Ray process on the machine.
- **Token authentication** (Ray >= 2.52): every Ray process of the cluster runs with ``RAY_AUTH_MODE=token``
  and ``RAY_AUTH_TOKEN_PATH`` pointing at the Node's secret (``state_dir/secrets/ray-token``, mode 0600, made
  at first start). The token travels in the environment's file path, never on a command line.
- Ports are configurable (the GCS port defaults to 6390, not Ray's 6379); every other port is chosen free
  unless set, so several Ray nodes (the head and local Workers) fit on one machine.
- A **Worker** is ``python -m grid_runtime.compute.cluster worker --address HOST:PORT --token-file F``, which
  execs ``ray start --block`` (so its pid is the Ray node's) with a ``grid_worker`` resource that jobs require.
- **Loopback** (a local deploy: the head's address is 127.0.0.1): Ray rewrites 127.0.0.1 to the machine's
  external address (``services.resolve_ip_for_localhost``) and its servers then listen beyond loopback. Every Ray
  process of such a cluster runs with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which makes Ray's
  ``get_node_ip_address()`` answer the loopback address, and ``--node-ip-address=127.0.0.1``: the GCS, raylets,
  object managers, agents, client server and core workers all listen on 127.0.0.1 only. ``ray start`` refuses to
  join a head under that variable ("multi-node clusters are not supported"), so a loopback Worker runs Ray's CLI
  in-process (``ray-start``, below) with that one check passed and 127.0.0.1 kept as given.
- Ray's **temp dir** (its sockets, session files and logs) is under the Node's state dir, inside a 0700 directory
  of ours (Ray makes its temp dir itself 0777), reached through a short symlink when the state dir's path is too
  long for unix sockets (``private_temp_dir``); every Ray process runs with umask 077.

Ray is imported inside the functions that need it: importing this module is cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import ipaddress
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN_FILE = Path("secrets") / "ray-token"
ADDRESS_FILE = "ray-address"  # in the Node's state dir: HOST:PORT of the head, for Workers to join
WORKER_RESOURCE = "grid_worker"
NAMESPACE = "gridctl"
RAY_DIR = "ray"  # in the Node's state dir, mode 0700: holds Ray's temp dir (RAY_TEMP)
RAY_TEMP = "tmp"
LOOPBACK_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's node address is the loopback address
RAY_UMASK = 0o077  # Ray's session files and logs readable by the owner only
# AF_UNIX socket paths hold at most 107 bytes. Ray's longest is
# <temp>/session_2026-12-01_10-01-07_123456_<pid>/sockets/plasma_store<.N with several Ray nodes on one machine>.
_SOCKET_PATH_MAX = 107
_SESSION_SOCKET_SUFFIX = len("/session_2026-12-01_10-01-07_123456_/sockets/plasma_store.99")
WARM_CHECK_SECONDS = 2.0  # how often the Node looks for Workers to warm (WorkerWarmer)
MAX_WARM_PROCESSES = 4  # Ray worker processes warmed on one Worker (each holds torch: hundreds of MB)
log = logging.getLogger("grid_runtime.compute")


class ClusterError(RuntimeError):
    """The Ray head could not be started or reached."""


# Ports picked for Ray's servers come from below the kernel's ephemeral range (32768+ on Linux) and above
# Ray's worker ports (10002-19999): a port the kernel hands out for bind(0) may be taken by one of Ray's many
# outgoing connections before the Ray process binds it, which kills a starting raylet ("Address already in use").
_PORT_RANGE = (20000, 32000)
_random = random.SystemRandom()


_HANDED_OUT: set[int] = set()
"""Ports this process has given out: a Ray node's ports are chosen together before it binds any of them, so a free
port must also differ from those given out before (two of one node's components on one port is Ray's error)."""
_HANDED_OUT_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now and this process has not given out, outside the ephemeral range and Ray's
    worker ports."""
    with _HANDED_OUT_LOCK:
        if len(_HANDED_OUT) > (_PORT_RANGE[1] - _PORT_RANGE[0]) // 2:
            _HANDED_OUT.clear()  # long-lived processes: the oldest ones were bound or released long ago
        for _ in range(200):
            port = _random.randrange(*_PORT_RANGE)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    raise ClusterError("no free port found for Ray")


def ensure_token(state_dir: Path) -> Path:
    """The cluster's token file under ``state_dir`` (made once, owner-only); returns its path."""
    path = state_dir / TOKEN_FILE
    if not path.exists() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path.resolve()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def address_host(address: str) -> str:
    return address.rsplit(":", 1)[0]


def ray_env(token_path: Path, base: dict[str, str] | None = None, *, loopback: bool = False) -> dict[str, str]:
    """The environment every Ray process of the cluster (head, Workers, driver) runs with; ``loopback`` for a
    cluster on 127.0.0.1 (a local deploy), whose processes then listen on loopback only."""
    env = dict(os.environ if base is None else base)
    env.pop("RAY_AUTH_TOKEN", None)  # the file decides; a stray variable would take precedence
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), RAY_USAGE_STATS_ENABLED="0")
    if loopback:
        env[LOOPBACK_VARIABLE] = "0"
    return env


def _pid_digits() -> int:
    try:
        return len(str(int(Path("/proc/sys/kernel/pid_max").read_text()) - 1))
    except (OSError, ValueError):
        return 7  # Linux's largest pid_max, 4194304


def private_temp_dir(state_dir: Path) -> Path:
    """Ray's temp dir for the cluster of the Node whose state is in ``state_dir``: ``state_dir/ray/tmp``, inside
    ``state_dir/ray`` made 0700 (Ray chmods its temp dir itself to 0777, so the guard is the directory above).

    Ray's unix sockets live under its temp dir and AF_UNIX paths hold at most 107 bytes. When the state dir's
    path is too long for them, Ray is given a short path instead: a symlink to ``state_dir/ray/tmp`` in a fresh
    0700 directory from mkdtemp (in /tmp, or TMPDIR). Ray keeps the path as given (it does not resolve it), so the
    sockets' paths are short while the files stay in the state dir. Returns the path to give Ray."""
    guard = (state_dir / RAY_DIR).resolve()
    guard.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(guard, 0o700)
    temp = guard / RAY_TEMP
    temp.mkdir(mode=0o700, exist_ok=True)
    if len(str(temp)) + _SESSION_SOCKET_SUFFIX + _pid_digits() <= _SOCKET_PATH_MAX:
        return temp
    short = Path(tempfile.mkdtemp(prefix="grid-ray-")) / RAY_TEMP  # the mkdtemp directory is 0700
    short.symlink_to(temp, target_is_directory=True)
    return short


def _port(value: int) -> int:
    return value or free_port()


def _agent_ports() -> list[str]:
    # Per-node agents: left to Ray's fixed defaults, two Ray nodes on one machine would collide.
    return [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]


@dataclass
class HeadConfig:
    host: str = "127.0.0.1"
    port: int = 6390
    client_server_port: int = 0
    node_manager_port: int = 0
    object_manager_port: int = 0
    dashboard_port: int = 0
    object_store_bytes: int = 256 * 1024**2
    start_timeout: float = 90.0


def _client_server_argv(config: HeadConfig) -> list[str]:
    # Nothing here uses Ray Client (ray://). Ray starts its server anyway, on the fixed port 10001, whenever its
    # dependencies ('ray[client]': grpcio) are importable, so then it gets a free port (two heads on one machine
    # must not collide); without them the option is an error, and leaving it out starts no client server.
    if importlib.util.find_spec("grpc") is None:
        return []
    return [f"--ray-client-server-port={_port(config.client_server_port)}"]


def head_argv(config: HeadConfig, temp_dir: Path) -> list[str]:
    port = _port(config.port)
    return [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--num-cpus=0", "--num-gpus=0",
        f"--node-ip-address={config.host}", f"--port={port}",
        *_client_server_argv(config),
        f"--node-manager-port={_port(config.node_manager_port)}",
        f"--object-manager-port={_port(config.object_manager_port)}",
        "--include-dashboard=false", "--dashboard-host=127.0.0.1", f"--dashboard-port={_port(config.dashboard_port)}",
        *_agent_ports(), f"--object-store-memory={config.object_store_bytes}", f"--temp-dir={temp_dir}",
        "--disable-usage-stats", "--log-style=record",
    ]


def worker_argv(address: str, *, num_cpus: float | None = None, object_store_bytes: int = 256 * 1024**2,
                host: str | None = None) -> list[str]:
    """``ray start`` for a Worker joining ``address``: blocking (its pid is the Ray node's), free ports. A Worker
    of a loopback head listens on 127.0.0.1 only, started through ``ray-start`` (see the module's docstring)."""
    loopback = is_loopback(address_host(address))
    if loopback and host is None:
        host = "127.0.0.1"
    cli = ([sys.executable, "-m", "grid_runtime.compute.cluster", "ray-start"] if loopback
           else [sys.executable, "-m", "ray.scripts.scripts"])
    argv = [*cli, "start", "--block", f"--address={address}",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}", *_agent_ports(),
            f"--object-store-memory={object_store_bytes}", "--num-gpus=0", "--disable-usage-stats",
            "--log-style=record", "--resources", f'{{"{WORKER_RESOURCE}": 1}}']
    if num_cpus is not None:
        argv.append(f"--num-cpus={num_cpus:g}")
    if host:
        argv.append(f"--node-ip-address={host}")
    return argv


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM it when the Node dies, even by SIGKILL, so no head is orphaned
    (`ray start --block` then stops the processes it started)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _proc_alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def stop_group(pid: int, *, timeout: float = 5.0) -> None:
    """SIGTERM the process group ``pid`` leads (a process we started with start_new_session), then SIGKILL."""
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):  # reap the leader if it is our child
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)


class RayHead:
    """The Ray head as a child process of the Node, and the Node's driver connection to it."""

    def __init__(self, config: HeadConfig, *, state_dir: Path) -> None:
        self.config = config
        self.state_dir = state_dir
        self.token_path = ensure_token(state_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""
        self.temp_dir: Path | None = None

    def start(self) -> str:
        """Start the head, wait until it answers, connect this process as the driver; returns HOST:PORT."""
        self.temp_dir = private_temp_dir(self.state_dir)
        argv = head_argv(self.config, self.temp_dir)
        port = int(next(a for a in argv if a.startswith("--port=")).split("=", 1)[1])
        with socket.socket() as probe:
            try:
                probe.bind((self.config.host, port))
            except OSError:
                raise ClusterError(f"the Ray head's port {port} on {self.config.host} is in use (another Node's "
                                   "head?); choose another with GRID_NODE_RAY_PORT") from None
        self.address = f"{self.config.host}:{port}"
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (log_dir / "ray-head.log").open("ab") as log:
            env = ray_env(self.token_path, loopback=is_loopback(self.config.host))
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True, umask=RAY_UMASK,
                                            preexec_fn=_terminate_with_parent)  # noqa: PLW1509
        try:
            self._connect()
        except BaseException:
            self.stop()
            raise
        (self.state_dir / ADDRESS_FILE).write_text(self.address + "\n")
        return self.address

    def _connect(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.config.start_timeout
        host, port = self.address.rsplit(":", 1)
        while True:
            if not _proc_alive(self.process):
                raise ClusterError(f"the Ray head exited during start-up (code {self.process.returncode}); "
                                   f"see {self.state_dir / 'logs' / 'ray-head.log'}")
            try:
                with socket.create_connection((host, int(port)), timeout=1.0):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"the Ray head did not listen on {self.address} within "
                                       f"{self.config.start_timeout:.0f}s") from None
                time.sleep(0.3)
        connect_driver(self.address, self.token_path, deadline=deadline)

    def alive(self) -> bool:
        return self.process is not None and _proc_alive(self.process)

    def stop(self) -> None:
        """Disconnect the driver and stop the head's process group (by pid, never ``ray stop``)."""
        disconnect_driver()
        if self.process is not None:
            stop_group(self.process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.process = None
        (self.state_dir / ADDRESS_FILE).unlink(missing_ok=True)
        if self.temp_dir is not None:
            import shutil

            # Ray's temp dir (sessions and logs of this run); the 0700 guard above it stays for the next start.
            shutil.rmtree(self.temp_dir.resolve(), ignore_errors=True)
            if self.temp_dir.is_symlink():  # the short path in a mkdtemp directory, for Ray's sockets
                shutil.rmtree(self.temp_dir.parent, ignore_errors=True)


class ExistingHead:
    """A Ray head someone else runs (a cloud deploy runs it as a systemd service beside the Node, on the
    ports its firewall opens): the Node only connects to it as the driver, and leaves it running."""

    def __init__(self, address: str, token_path: Path, *, start_timeout: float) -> None:
        self.address = address
        self.token_path = token_path
        self.start_timeout = start_timeout

    def start(self) -> str:
        connect_driver(self.address, self.token_path, deadline=time.monotonic() + self.start_timeout)
        return self.address

    def alive(self) -> bool:
        import ray

        return bool(ray.is_initialized())

    def stop(self) -> None:
        disconnect_driver()


def disconnect_driver() -> None:
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except Exception:  # noqa: BLE001, S110 - shutting down regardless
        pass


def connect_driver(address: str, token_path: Path, *, deadline: float | None = None) -> None:
    """Connect this process to the cluster as its driver (token auth), retrying until ``deadline``."""
    # Before importing ray: it reads the auth mode, the token and the loopback switch when it loads.
    loopback = is_loopback(address_host(address))
    os.environ.update(ray_env(token_path, {}, loopback=loopback))
    import ray

    if loopback:
        _keep_loopback()  # ray may have been imported before the variable was set

    deadline = deadline or time.monotonic() + 60
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    while True:
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=False, _node_ip_address=address_host(address) if loopback else None)
            if main_thread:
                # ray.init replaces SIGTERM handling (Python's and, in C++, a stack-dumping handler that kills
                # the process); give it back to the server so a stopped Node still stops its head.
                signal.signal(signal.SIGTERM, previous)
            return
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline:
                raise ClusterError(f"could not connect to the Ray head at {address}: {exc}") from exc
            time.sleep(0.5)


def cluster_nodes() -> list[dict[str, Any]]:
    """Every Ray node the head knows: id, alive, address, head or Worker, resources, available and load."""
    import ray
    from ray._private import state

    available = state.available_resources_per_node() if ray.is_initialized() else {}
    rows = []
    for node in ray.nodes():
        total = {k: v for k, v in node.get("Resources", {}).items() if not k.startswith("node:")}
        free = {k: v for k, v in available.get(node["NodeID"], {}).items() if not k.startswith("node:")}
        cpus = float(total.get("CPU", 0.0))
        used = cpus - float(free.get("CPU", cpus)) if node.get("Alive") else 0.0
        rows.append({
            "node_id": node["NodeID"],
            "alive": bool(node.get("Alive")),
            "address": node.get("NodeManagerAddress", ""),
            "role": "head" if "node:__internal_head__" in node.get("Resources", {}) else "worker",
            "cpus": cpus,
            "cpus_in_use": used,
            "load": (used / cpus) if cpus else 0.0,
            "memory_bytes": int(total.get("memory", 0)),
            "object_store_bytes": int(total.get("object_store_memory", 0)),
            "resources": total,
            "available": free if node.get("Alive") else {},
        })
    return rows


class WorkerWarmer:
    """Warm Workers: each Worker that joins gets, once, a warm-up task (`tasks.warm_up`) in each of the Ray worker
    processes it can run jobs in at once (its CPUs over ``job_cpus``, at most ``MAX_WARM_PROCESSES``): Ray starts
    those processes, torch and the rest are imported there, and Ray keeps them idle for the driver's next tasks.
    The warm-ups take the shape of a job (``job_cpus`` and the Worker resource), so a job submitted while one runs
    waits for it and then reuses its process instead of starting a cold one.

    The Node warms too, once, when it first sees a Worker: it imports what admitting a job needs (the privacy
    accounting with dp-accounting and scipy, OpenDP for statistics, the model spec), kept off its start path.

    Driven by the job runner's monitor thread: ``tick()`` looks for new Workers every ``check_seconds`` and
    collects finished warm-ups (logged with their pid and time); it never raises. A warm-up that fails is logged
    and not retried (a Worker that rejoins has a new node id and is warmed again)."""

    def __init__(self, *, job_cpus: float, check_seconds: float = WARM_CHECK_SECONDS) -> None:
        self.job_cpus = job_cpus
        self.check_seconds = check_seconds
        self.warmed: dict[str, list[dict[str, Any]]] = {}  # node id -> the warm-ups' reports
        self._asked: set[str] = set()
        self._pending: dict[Any, str] = {}  # warm-up ObjectRef -> node id
        self._next_check = 0.0
        self._remote: Any = None
        self.driver_warm = False

    def tick(self) -> None:
        try:
            self._collect()
            if time.monotonic() >= self._next_check:
                self._next_check = time.monotonic() + self.check_seconds
                self._warm_new_workers()
        except Exception:  # noqa: BLE001 - warming is an optimisation: never the monitor's failure
            log.warning("warming Workers failed", exc_info=True)

    def _warm_new_workers(self) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from grid_runtime.compute import tasks

        if self._remote is None:
            self._remote = ray.remote(max_retries=0)(tasks.warm_up)
        for node in ray.nodes():
            resources = node.get("Resources", {})
            node_id = node["NodeID"]
            if not node.get("Alive") or WORKER_RESOURCE not in resources or node_id in self._asked:
                continue
            self._asked.add(node_id)
            processes = min(MAX_WARM_PROCESSES, int(float(resources.get("CPU", 0.0)) // self.job_cpus))
            for _ in range(processes):  # none when a job cannot fit on this Worker at all
                ref = self._remote.options(
                    num_cpus=self.job_cpus, resources={WORKER_RESOURCE: 0.01}, name="grid-warm-up",
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote()
                self._pending[ref] = node_id
        if self._pending and not self.driver_warm:
            self._warm_driver()

    def _warm_driver(self) -> None:
        """Import, in the Node, what admitting a job imports on first use (while the Workers warm up)."""
        self.driver_warm = True  # tried once: a failing import is the first job's to report
        started = time.perf_counter()
        import grid_runtime.compute.memory
        import grid_runtime.compute.statistics
        import grid_runtime.privacy  # noqa: F401

        log.info("the Node is ready to admit jobs: accounting and statistics imported in %.1f s",
                 time.perf_counter() - started)

    def _collect(self) -> None:
        if not self._pending:
            return
        import ray

        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
        for ref in ready:
            node_id = self._pending.pop(ref)
            try:
                report = ray.get(ref, timeout=10)
            except Exception as exc:  # noqa: BLE001 - the Worker died, or an import failed there
                log.warning("warming a Ray worker process on Worker %s failed: %s", node_id[:12], type(exc).__name__)
                continue
            self.warmed.setdefault(node_id, []).append(report)
            log.info("Worker %s warm: Ray worker process pid %d ready in %.1f s (%.1f s CPU)", node_id[:12],
                     report["pid"], report["seconds"], report["cpu_seconds"])


# ---- a Worker: `python -m grid_runtime.compute.cluster worker ...` -----------------------------------------


def _keep_loopback() -> None:
    """In this process, Ray keeps 127.0.0.1 as given instead of rewriting it to the machine's external address."""
    from ray._private import services

    original = getattr(services.resolve_ip_for_localhost, "__wrapped__", services.resolve_ip_for_localhost)

    def resolve(host: str) -> str:
        return host if is_loopback(host) else original(host)

    resolve.__wrapped__ = original  # type: ignore[attr-defined]
    services.resolve_ip_for_localhost = resolve


def ray_start_loopback(args: Sequence[str]) -> None:
    """Run ``ray start ARGS`` in this process for a Worker of a loopback head (its env has the loopback
    variable, inherited by the raylet and agents it starts). Ray's CLI aborts a non-head ``ray start`` under that
    variable; in this process only, the check passes and 127.0.0.1 is kept as given."""
    from ray._private import ray_constants
    from ray.scripts import scripts

    _keep_loopback()
    ray_constants.ENABLE_RAY_CLUSTER = True
    sys.argv = ["ray", *args]
    scripts.main()


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["ray-start"]:
        ray_start_loopback(arguments[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m grid_runtime.compute.cluster",
                                     description="Start a gridctl Worker: a Ray node joining the Node's head.")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="join the cluster at --address with the token in --token-file")
    worker.add_argument("--address", required=True, help="HOST:PORT of the Ray head (the Node's ray-address)")
    worker.add_argument("--token-file", required=True, type=Path, help="the cluster's token (mode 0600)")
    worker.add_argument("--num-cpus", type=float, default=None, help="CPUs this Worker offers [all]")
    worker.add_argument("--object-store-bytes", type=int, default=256 * 1024**2)
    worker.add_argument("--host", default=None, help="this Worker's address as the others see it")
    args = parser.parse_args(argv)
    token = args.token_file.resolve()
    if not token.exists():
        parser.error(f"no token file at {token}")
    command = worker_argv(args.address, num_cpus=args.num_cpus, object_store_bytes=args.object_store_bytes,
                          host=args.host)
    os.umask(RAY_UMASK)  # kept across exec, inherited by the raylet and agents
    env = ray_env(token, loopback=is_loopback(address_host(args.address)))
    os.execve(command[0], command, env)  # noqa: S606 - this pid becomes the Ray node's `ray start --block`


if __name__ == "__main__":
    main()
