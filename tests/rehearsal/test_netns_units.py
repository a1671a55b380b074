"""How the rehearsal (providers/rehearsal.py) reads the rendered units and what it runs for them: which
[Service] options it reproduces outside systemd and which only systemd-analyze checks. No root needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from providers.rehearsal import (
    MAX_RESTARTS,
    REPRODUCED,
    SYSTEM_UNITS,
    Machine,
    Process,
    RehearsalError,
    Unit,
    _seconds,
    _stale,
    host_problems,
    parse_unit,
    read_environment_file,
    run_rehearsal,
)
from tests.rehearsal.machines import machines, written_files


def _unit(cloud: str, role: str, name: str) -> str:
    rendered = machines(cloud)
    return written_files(rendered.node if role == "node" else rendered.workers[0])[f"/etc/systemd/system/{name}"]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_nodes_unit_is_run_with_its_user_environment_and_sandboxing(cloud: str) -> None:
    unit = parse_unit("grid-node.service", _unit(cloud, "node", "grid-node.service"))
    assert unit.exec_start == ["/opt/gridctl/venv/bin/python", "-m", "grid_runtime.node"]
    assert (unit.user, unit.group) == ("grid", "grid")
    assert unit.environment_files == ["/etc/gridctl/node.env", "/var/lib/gridctl/secrets/service.env"]
    assert unit.no_new_privileges and unit.private_tmp
    assert (unit.protect_system, unit.read_write_paths) == ("strict", ["/var/lib/gridctl"])
    assert (unit.restart, unit.restart_sec) == ("on-failure", 5.0)
    # What a rehearsal cannot reproduce without systemd is named, and only systemd-analyze checks it.
    assert set(unit.unreproduced) == {"ProtectHome"}


def test_a_workers_exec_start_keeps_its_quoted_json_as_one_argument() -> None:
    unit = parse_unit("ray-worker.service", _unit("aws", "worker", "ray-worker.service"))
    assert '--resources={"grid_worker": 1}' in unit.exec_start
    assert unit.environment["RAY_AUTH_MODE"] == "token"
    assert (unit.restart, unit.restart_sec) == ("always", 10.0)  # a Worker up before the head tries again
    assert set(unit.unreproduced) == {"ExecStop"}


def test_caddy_is_debians_unit_with_the_drop_in_that_gives_it_the_public_address() -> None:
    files = written_files(machines("aws").node)
    unit = parse_unit("caddy.service", (SYSTEM_UNITS / "caddy.service").read_text(),
                      (files["/etc/systemd/system/caddy.service.d/gridctl.conf"],))
    assert unit.exec_start[:2] == ["/usr/bin/caddy", "run"] and unit.user == "caddy"
    assert unit.environment_files == ["/etc/gridctl/caddy.env"]
    assert unit.ambient_capabilities == ["net_bind_service"] and unit.private_tmp
    assert unit.protect_system == "full"
    assert not set(unit.unreproduced) & REPRODUCED


def test_what_a_unit_runs_is_its_command_in_its_namespace_as_its_user(tmp_path: Path) -> None:
    files = written_files(machines("aws").node)
    machine = Machine(role="node", netns="gridrh-1-node", root=tmp_path, user_data=machines("aws").node,
                      venv=tmp_path / "venv", service_user="gridrh-1-grid", extra_env={}, python="python3",
                      say=lambda _: None)
    unit = parse_unit("grid-node.service", files["/etc/systemd/system/grid-node.service"])
    unit.user = unit.group = "gridrh-1-grid"
    argv = machine.command(unit.exec_start, unit)
    assert argv[:4] == ["ip", "netns", "exec", "gridrh-1-node"]
    script = argv[6]
    assert f"mount --bind {tmp_path}/var/lib/gridctl /var/lib/gridctl" in script
    assert "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp" in script  # PrivateTmp
    assert "mount -o remount,bind,ro /;" in script  # ProtectSystem=strict
    assert "mount -o remount,bind,ro /var/lib/gridctl" not in script  # ReadWritePaths stays writable
    setpriv = argv[argv.index("setpriv"):argv.index("--")]
    assert "--reuid=gridrh-1-grid" in setpriv and "--no-new-privs" in setpriv
    assert argv[argv.index("--") + 1:] == unit.exec_start
    done = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_environment_files_are_read_as_systemd_reads_them() -> None:
    text = "# a comment\nA=1\nB='two words'\n\nC=\"x=y\"\n; another\n"
    assert read_environment_file(text) == {"A": "1", "B": "two words", "C": "x=y"}


def test_only_leftovers_of_a_rehearsal_whose_process_is_gone_are_stale() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert _stale(f"gridrh-{dead.pid}-node")
    assert not _stale(f"gridrh-{os.getpid()}-node")
    assert not _stale("gridrh-lan")  # no pid: never someone's to remove


def test_a_target_without_a_rehearsal_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gridctl deploy <cloud> --rehearse`` (``run_rehearsal``) refuses at once, with the reason: no wheel built,
    no virtualenv made."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(RehearsalError, match=r"local's machines cannot be rehearsed here \(rehearsed: aws, gcp, "
                                             r"azure"):
        run_rehearsal("local")
    assert not (tmp_path / "cache").exists()


def test_what_each_clouds_emulators_need_is_named_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no command at all
    problems = host_problems(("azure",))
    assert "azure: the 'node' command is missing (apt-get install nodejs)" in problems
    assert "the 'caddy' command is missing" in problems
    assert not [problem for problem in problems if problem.startswith(("aws:", "gcp:"))]


def _machine(tmp_path: Path) -> Machine:
    return Machine(role="worker1", netns="gridrh-1-worker1", root=tmp_path, user_data=machines("aws").workers[0],
                   venv=tmp_path / "venv", service_user="gridrh-1-grid", extra_env={}, python="python3",
                   say=lambda _: None)


def _exiting(machine: Machine, unit: Unit, code: int, monkeypatch: pytest.MonkeyPatch) -> list[Process]:
    """``machine`` running ``unit`` as a process that has already exited with ``code``; every restart too."""
    log = machine.root / f"{unit.name}.log"
    log.write_text("Failed to get node info: RPC error: Deadline Exceeded\n")
    started: list[Process] = []

    def spawn(what: Unit) -> Process:
        popen = subprocess.Popen(["sh", "-c", f"exit {code}"])
        popen.wait()
        started.append(Process(what.name, popen, log))
        return started[-1]

    monkeypatch.setattr(machine, "unit", lambda name: unit)
    monkeypatch.setattr(machine, "_spawn", spawn)
    machine.processes.append(spawn(unit))
    return started


def test_a_unit_that_exits_is_started_again_as_its_restart_says_then_fails_the_rehearsal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As systemd does for ``Restart=always`` (a Worker's Ray that found no head yet), up to MAX_RESTARTS times."""
    unit = parse_unit("ray-worker.service", "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=0\n")
    machine = _machine(tmp_path)
    started = _exiting(machine, unit, 1, monkeypatch)
    for _ in range(MAX_RESTARTS):
        machine.check_running()
    assert len(started) == 1 + MAX_RESTARTS and machine.processes[0].restarts == MAX_RESTARTS
    with pytest.raises(RehearsalError, match=rf"worker1: ray-worker.service exited 1 \(restarted {MAX_RESTARTS} "
                                             r"times\):\nFailed to get node info"):
        machine.check_running()


def test_a_unit_is_not_started_again_before_its_restart_sec_nor_against_its_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = parse_unit("ray-worker.service", "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=10\n")
    machine = _machine(tmp_path)
    started = _exiting(machine, waiting, 1, monkeypatch)
    machine.check_running()
    assert len(started) == 1 and machine.processes[0].exited_at is not None  # waiting out RestartSec=10
    # Restart=on-failure: a clean exit is final, and fails the rehearsal at once.
    clean = parse_unit("grid-node.service", "[Service]\nExecStart=/bin/true\nRestart=on-failure\n")
    machine = _machine(tmp_path)
    _exiting(machine, clean, 0, monkeypatch)
    with pytest.raises(RehearsalError, match=r"grid-node.service exited 0:"):
        machine.check_running()


def test_restart_sec_is_read_as_systemd_reads_a_time_span() -> None:
    assert [_seconds(value) for value in ("10", "10s", "500ms", "1min 30s", "2m")] == [10, 10, 0.5, 90, 120]
