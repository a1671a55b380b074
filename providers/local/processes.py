"""Background processes of a local deployment, tracked by pid in ``processes.json``.

Each process is started in its own session (so it outlives the CLI and a terminal's Ctrl-C), with its
output appended to a log file. A process is recorded with its pid *and* its start time as the kernel
reports it, so that a pid reused by an unrelated program after a reboot is never mistaken for ours and
never signalled. Stopping sends SIGTERM to the process's own group, then SIGKILL after a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from providers.base import utc_timestamp, write_state_file

PROCESS_FILE = "processes.json"


@dataclass
class TrackedProcess:
    role: str  # "node"; later "ray-head", "worker-1", ...
    pid: int
    start_ticks: int | None  # /proc/<pid>/stat start time; None where /proc is absent
    argv: list[str]
    log: str
    started_at: str


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of ``pid`` from /proc, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return fields[0], int(fields[19])


def _reap(pid: int) -> bool:
    """Collect ``pid`` if it is our exited child (when the CLI runs in-process); True if it was."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def is_alive(process: TrackedProcess) -> bool:
    if _reap(process.pid):
        return False
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(process.pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False  # gone, or a zombie nobody has collected yet
        return process.start_ticks is None or stat[1] == process.start_ticks
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(role: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> TrackedProcess:
    """Start ``argv`` in the background, detached from the CLI, output appended to ``log``."""
    with log.open("ab") as out:
        # umask 077: what the Node and its Ray processes create (database, objects, Ray's session files and logs)
        # is readable by the owner only.
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
    stat = _proc_stat(process.pid)
    return TrackedProcess(role=role, pid=process.pid, start_ticks=stat[1] if stat else None, argv=list(argv),
                          log=str(log), started_at=utc_timestamp())


def _signal(process: TrackedProcess, signum: int) -> None:
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signum)  # its own group: children it started go too
        else:
            os.kill(process.pid, signum)
    except ProcessLookupError:
        pass


def stop(process: TrackedProcess, *, timeout: float = 15.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout`` seconds. Returns False if it was not running."""
    if not is_alive(process):
        return False
    _signal(process, signal.SIGTERM)
    if not wait_gone(process, timeout):
        _signal(process, signal.SIGKILL)
        wait_gone(process, 5.0)
    return True


def wait_gone(process: TrackedProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class ProcessTable:
    """``processes.json`` in a deployment's state directory: role -> TrackedProcess."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / PROCESS_FILE

    def load(self) -> dict[str, TrackedProcess]:
        if not self.path.exists():
            return {}
        return {role: TrackedProcess(**body) for role, body in json.loads(self.path.read_text()).items()}

    def save(self, processes: Mapping[str, TrackedProcess]) -> None:
        body = {role: asdict(p) for role, p in processes.items()}
        write_state_file(self.path, json.dumps(body, indent=2) + "\n")

    def put(self, process: TrackedProcess) -> None:
        processes = self.load()
        processes[process.role] = process
        self.save(processes)
