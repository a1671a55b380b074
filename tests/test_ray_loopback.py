"""Ray on loopback for a local cluster: every TCP socket the cluster's processes listen on (the Node's driver,
the head's GCS, raylet, object manager, agents and client server, each Worker's raylet and Ray workers) is bound
to 127.0.0.1; Ray's temp dir lies inside a 0700 directory of the Node's state dir and its logs are readable by
the owner only. The processes are found by pid tree from the session cluster's Node and Workers (real Ray)."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from grid_runtime.compute import cluster
from tests.processes import descendants
from tests.ray_cluster import RayNode

LISTEN = "0A"
# A driver of its own (a subprocess) runs one task on a Worker; the Ray worker process executing it reports the
# addresses its own listening sockets are bound to.
TASK = r"""
import os, sys
from pathlib import Path
from grid_runtime.compute.cluster import WORKER_RESOURCE, connect_driver

def listening():
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in mine:
                found.append(fields[1])
    return os.getppid(), found  # its raylet's pid: the Ray worker itself may be gone when the test looks

connect_driver(sys.argv[1], Path(sys.argv[2]))  # before importing ray: it reads the token's path on import
import ray
pid, found = ray.get(ray.remote(listening).options(resources={WORKER_RESOURCE: 0.001}).remote(), timeout=240)
print(pid, " ".join(found))
"""


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in (Path(f"/proc/{pid}") / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]  # /proc/net/tcp6: four host-order 32-bit words
    address = ipaddress.IPv6Address(b"".join(words))
    return str(address.ipv4_mapped or address)  # Ray's gRPC servers listen on [::ffff:127.0.0.1]


def _listening() -> dict[str, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket on the machine."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            address, port = fields[1].split(":")
            found[fields[9]] = (_address(address), int(port, 16))
    return found


def _owned_listeners(ray_node: RayNode) -> dict[int, list[tuple[str, int]]]:
    pids = descendants([ray_node.node.pid, *(w.pid for w in ray_node.workers)])
    listening = _listening()
    owned: dict[int, list[tuple[str, int]]] = {}
    for pid in pids:
        for inode in _socket_inodes(pid):
            if inode in listening:
                owned.setdefault(pid, []).append(listening[inode])
    return owned


class TestRayOnLoopback:
    def test_every_listening_socket_of_the_cluster_is_on_loopback(self, ray_node: RayNode) -> None:
        owned = _owned_listeners(ray_node)
        sockets = {s for found in owned.values() for s in found}
        gcs_port = int((ray_node.state_dir / "ray-address").read_text().strip().rsplit(":", 1)[1])
        assert ("127.0.0.1", gcs_port) in sockets, sockets  # the search found the head's processes
        assert len(owned) >= 4, owned  # the Node, the GCS, the raylets of the head and the Workers at least
        outside = {pid: found for pid, found in owned.items()
                   if any(not ipaddress.ip_address(address).is_loopback for address, _ in found)}
        assert outside == {}, {pid: (Path(f"/proc/{pid}/cmdline").read_bytes()[:120], found)
                               for pid, found in outside.items()}

    def test_a_ray_worker_running_a_task_listens_on_loopback(self, ray_node: RayNode) -> None:
        address = (ray_node.state_dir / "ray-address").read_text().strip()
        done = subprocess.run([sys.executable, "-c", TASK, address, str(ray_node.state_dir / "secrets" / "ray-token")],
                              capture_output=True, text=True, timeout=300, check=False,
                              umask=0o077)  # as the Node's own driver runs (providers/local, tests/ray_cluster.py)
        assert done.returncode == 0, done.stderr[-2000:]
        raylet, *found = done.stdout.split()
        assert int(raylet) in descendants([w.pid for w in ray_node.workers])  # it ran on one of the Workers
        assert found  # a Ray worker serves its peers over gRPC
        assert all(ipaddress.ip_address(_address(f.split(":")[0])).is_loopback for f in found), found

    def test_the_temp_dir_is_inside_a_private_directory_of_the_state_dir(self, ray_node: RayNode) -> None:
        guard = ray_node.state_dir / cluster.RAY_DIR
        assert stat.S_IMODE(guard.stat().st_mode) == 0o700
        sessions = list((guard / cluster.RAY_TEMP).glob("session_2*"))
        assert sessions, "Ray's session dir is not under the state dir"
        logs = [p for p in (sessions[0] / "logs").rglob("*") if p.is_file()]
        assert logs
        readable = [(p.name, oct(p.stat().st_mode)) for p in logs if p.stat().st_mode & 0o077]
        assert readable == []


class TestTempDir:
    def test_a_short_state_dir_holds_the_temp_dir_guarded_0700(self) -> None:
        import shutil
        import tempfile

        short = Path(tempfile.mkdtemp(prefix="g"))  # pytest's tmp_path is too long for Ray's sockets
        try:
            temp = cluster.private_temp_dir(short)
            assert temp == (short / "ray" / "tmp").resolve() and not temp.is_symlink()
            assert stat.S_IMODE(temp.parent.stat().st_mode) == 0o700
        finally:
            shutil.rmtree(short)

    def test_a_state_dir_too_long_for_unix_sockets_is_reached_through_a_short_private_symlink(
            self, tmp_path: Path) -> None:
        deep = tmp_path / ("d" * 60)
        given = cluster.private_temp_dir(deep)
        try:
            assert given.is_symlink() and given.resolve() == (deep / "ray" / "tmp").resolve()
            assert len(str(given)) + len("/session_2026-12-01_10-01-07_123456_1234567/sockets/plasma_store") <= 107
            assert stat.S_IMODE(given.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE((deep / "ray").stat().st_mode) == 0o700
        finally:
            import shutil

            shutil.rmtree(given.parent)


class TestCommandLines:
    @pytest.mark.parametrize("address", ["127.0.0.1:23456", "localhost:23456"])
    def test_a_worker_of_a_loopback_head_listens_on_loopback(self, address: str) -> None:
        argv = cluster.worker_argv(address)
        assert "--node-ip-address=127.0.0.1" in argv
        assert argv[1:4] == ["-m", "grid_runtime.compute.cluster", "ray-start"]
        env = cluster.ray_env(Path("/t"), {}, loopback=cluster.is_loopback(cluster.address_host(address)))
        assert env[cluster.LOOPBACK_VARIABLE] == "0"

    def test_one_nodes_ports_are_distinct_even_when_the_random_draws_repeat(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Each port is drawn twice in a row: before, two of a Worker's components could get the same port, and
        # `ray start` refused it ("trying to use a port number ... that is used by other components").
        draws = iter(p for port in range(24000, 24100) for p in (port, port))
        monkeypatch.setattr(cluster._random, "randrange", lambda *_: next(draws))
        monkeypatch.setattr(cluster, "_HANDED_OUT", set())
        argv = cluster.worker_argv("127.0.0.1:23456")
        ports = [int(a.split("=")[1]) for a in argv if a.startswith("--") and a.split("=")[0].endswith("-port")]
        assert len(ports) == 6 and len(set(ports)) == 6

    def test_a_worker_of_a_remote_head_runs_plain_ray_start(self) -> None:
        argv = cluster.worker_argv("10.0.0.5:6390")
        assert argv[1:3] == ["-m", "ray.scripts.scripts"]
        assert not any(a.startswith("--node-ip-address") for a in argv)
        assert cluster.LOOPBACK_VARIABLE not in cluster.ray_env(Path("/t"), {}, loopback=False)
