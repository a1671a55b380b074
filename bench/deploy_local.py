"""How long ``gridctl deploy local`` keeps a person waiting, and what the processes it starts hold in memory.

Each run deploys a fresh deployment (its own GRIDCTL_HOME in a short temp dir), as a person would from a shell:
``gridctl deploy local --yes`` as a subprocess, while a thread tries the Node's port every 20 ms and, once it is
open, asks ``/api/v1/health`` (a refused connect costs far less CPU than an HTTP attempt, which the Node pays for).
Printed per case (medians over ``--runs``): time to healthy (from launching the command to the first 200 from
``/health``), time until the command returned (the Owner created, its token saved), the CPU time (user + system)
the Node's process had used when it first answered ``/health`` and the CPU time of the ``gridctl`` process itself
(on a loaded machine these move far less than wall time: compare them across runs), and the resident memory
(VmRSS, MB) of the Node's process tree (with a Ray head when there are Workers: the head's processes count with
the Node's) and of each Worker's tree. Cases: without Workers (a first deploy: an empty database); a restart
(``deploy local`` again after ``destroy local`` without ``--purge``: the data kept, its database at head; only
the second deploy is timed); and with ``--workers 2``. Every deployment is destroyed and purged afterwards (its
processes stopped by pid). The load average is printed beside the figures, and each case's figures beside the
baseline measured on this machine before issue 11's start-up work (``BASELINE``).
As on a person's machine, Python writes bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped from the environment) and
the project's packages are byte-compiled before the first run, so no run pays for compiling changed sources.
Target (issue 11): a Node without Workers healthy in <= 2 s.

    python bench/deploy_local.py [--runs 3] [--workers 2] [--skip-workers]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import children  # noqa: E402  (path tweak)

GRIDCTL = [str(Path(sys.executable).with_name("gridctl"))]  # the installed entry point, as a person runs it
PASSWORD = "bench-password-123"  # noqa: S105  (a throwaway deployment's Owner)
TARGET_HEALTHY_SECONDS = 2.0
# Medians before issue 11's start-up work (the Node replayed all 7 migrations on an empty database and loaded
# Alembic at every start; the CLI tried /health over HTTP every 100 ms), measured with this script on this 2-core
# machine just before that work: (healthy s, returned s, Node CPU to healthy s, the load average while measuring).
# Wall times grow with the load (other sessions' work); CPU times much less.
BASELINE: dict[str, tuple[float, float, float, str]] = {
    "first": (2.65, 3.74, 2.22, "load 0.0-1.4, 5 runs"),
    "restart": (4.60, 4.77, 2.40, "load 6.4-7.2, 4 runs"),
}


ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
_COMPILE = ("import compileall, grid_runtime, gridctl, providers\n"
            "for package in (grid_runtime, gridctl, providers):\n"
            "    for path in package.__path__:\n"
            "        compileall.compile_dir(path, quiet=1)\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(root: int) -> float:
    tree, total, todo, seen = children(), 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(tree.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid`` (its own threads, not its children)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_pid(cli: int) -> int | None:
    """The Node process (``python -m grid_runtime.node``) among the CLI's children."""
    for pid in children().get(cli, []):
        try:
            if b"grid_runtime.node" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def deploy_once(workers: int, *, restart: bool = False) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="gdb"))  # short: Ray's unix sockets live under the state dir
    port = free_port()
    env = {**ENV, "GRIDCTL_HOME": str(home), "GRIDCTL_OWNER_PASSWORD": PASSWORD}
    argv = [*GRIDCTL, "deploy", "local", "--name", "b", "--port", str(port), "--yes"]
    if workers:
        argv += ["--workers", str(workers)]
    if restart:  # a first deploy (not timed), stopped with its data kept
        subprocess.run(argv, env=env, capture_output=True, timeout=600, check=True)
        subprocess.run([*GRIDCTL, "destroy", "local", "--name", "b", "--yes"], env=env, capture_output=True,
                       timeout=300, check=True)
    healthy: list[float] = []
    node_cpu: list[float] = []
    stop = threading.Event()

    def poll(start: float, cli: int) -> None:
        with httpx.Client(timeout=0.5) as client:
            while not stop.is_set():
                try:
                    if listening(port) and client.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                        healthy.append(time.perf_counter() - start)
                        pid = node_pid(cli)
                        if pid is not None:
                            node_cpu.append(cpu_seconds(pid))
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    poller = threading.Thread(target=poll, args=(start, command.pid), daemon=True)
    poller.start()
    try:
        out, err = command.communicate(timeout=600)
        returned = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # gridctl only: the Node it started is not reaped
        stop.set()
        poller.join(5)
        if command.returncode != 0:
            raise SystemExit(f"deploy failed ({command.returncode}):\n{out}\n{err}")
        table = json.loads((home / "deployments" / "b" / "processes.json").read_text())
        row = {"healthy_s": healthy[0] if healthy else float("nan"), "returned_s": returned,
               "node_cpu_s": node_cpu[0] if node_cpu else float("nan"),
               "cli_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
               "node_rss_mb": tree_rss_mb(table["node"]["pid"])}
        worker_rss = [tree_rss_mb(p["pid"]) for role, p in table.items() if role.startswith("worker-")]
        if worker_rss:
            row["worker_rss_mb"] = statistics.mean(worker_rss)
        return row
    finally:
        stop.set()
        if command.poll() is None:
            command.kill()
            command.wait()
        subprocess.run([*GRIDCTL, "destroy", "local", "--name", "b", "--purge", "--yes"], env=env,
                       capture_output=True, timeout=300, check=False)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-workers", action="store_true", help="only the case without Workers")
    args = parser.parse_args()
    cases: list[tuple[str, int]] = [("first", 0), ("restart", 0)]
    if not args.skip_workers:
        cases.append(("workers", args.workers))
    labels = {"first": "deploy local (no Workers)", "restart": "deploy local again (restart)",
              "workers": f"deploy local --workers {args.workers}"}
    subprocess.run([sys.executable, "-c", _COMPILE], env=ENV, check=True, timeout=600)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    results = {}
    for case, workers in cases:
        rows = [deploy_once(workers, restart=case == "restart") for _ in range(args.runs)]
        results[case] = figures = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        line = (f"{labels[case]:32s} healthy {figures['healthy_s']:6.2f} s   returned {figures['returned_s']:6.2f} s"
                f"   Node CPU to healthy {figures['node_cpu_s']:5.2f} s   gridctl CPU {figures['cli_cpu_s']:5.2f} s"
                f"   Node RSS {figures['node_rss_mb']:7.1f} MB")
        if "worker_rss_mb" in figures:
            line += f"   Worker RSS {figures['worker_rss_mb']:7.1f} MB each"
        print(line + f"   (median of {args.runs}; runs: " +
              ", ".join(f"{r['healthy_s']:.2f}/{r['returned_s']:.2f}" for r in rows) + ")")
        if case in BASELINE:
            healthy, returned, node_cpu, conditions = BASELINE[case]
            print(f"{'  baseline (before issue 11)':32s} healthy {healthy:6.2f} s   returned {returned:6.2f} s"
                  f"   Node CPU to healthy {node_cpu:5.2f} s   ({conditions})")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"target: healthy <= {TARGET_HEALTHY_SECONDS:.1f} s without Workers: "
          f"{'met' if results['first']['healthy_s'] <= TARGET_HEALTHY_SECONDS else 'missed'}")


if __name__ == "__main__":
    main()
