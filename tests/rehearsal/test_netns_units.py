"""How the rehearsal (providers/rehearsal.py) reads the rendered units and what it runs for them: which
[Service] options it reproduces outside systemd and which only systemd-analyze checks. No root needed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from providers.rehearsal import (
    REPRODUCED,
    SYSTEM_UNITS,
    Machine,
    _stale,
    parse_unit,
    read_environment_file,
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
    # What a rehearsal cannot reproduce without systemd is named, and only systemd-analyze checks it.
    assert set(unit.unreproduced) == {"Restart", "RestartSec", "ProtectHome"}


def test_a_workers_exec_start_keeps_its_quoted_json_as_one_argument() -> None:
    unit = parse_unit("ray-worker.service", _unit("aws", "worker", "ray-worker.service"))
    assert '--resources={"grid_worker": 1}' in unit.exec_start
    assert unit.environment["RAY_AUTH_MODE"] == "token"
    assert set(unit.unreproduced) == {"ExecStop", "Restart", "RestartSec"}


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


def test_deploy_rehearse_says_which_clouds_it_cannot_rehearse_before_building_anything(tmp_path: Path) -> None:
    """``gridctl deploy gcp --rehearse`` refuses at once, with the reason (no wheel built, no virtualenv made)."""
    import shutil
    import sys

    gridctl = shutil.which("gridctl", path=str(Path(sys.executable).parent)) or "gridctl"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([gridctl, "deploy", "gcp", "--name", "demo", "--rehearse"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode != 0
    assert "gcp's machines cannot be rehearsed here yet (rehearsed: aws" in done.stderr + done.stdout
    assert not (tmp_path / "cache").exists()
