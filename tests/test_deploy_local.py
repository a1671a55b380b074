"""`gridctl deploy local`, `gridctl status` and `gridctl destroy local` with real Node processes.

Every command runs the real CLI in a subprocess with GRIDCTL_HOME in a temporary directory, so deployments,
contexts and processes are those an operator would get. Ports are free ones picked per test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gridctl.sdk.errors import GridctlError
from gridctl.sdk.node import Node
from providers import base
from providers.base import DeploymentSpec, Feature, Unsupported
from providers.local import processes
from providers.local.processes import ProcessTable
from providers.local.provider import LocalProvider
from tests.live import free_port

pytestmark = pytest.mark.slow


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Gridctl:
    """The ``gridctl`` command with its own GRIDCTL_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDCTL_", "GRID_NODE_"))}
        self.env["GRIDCTL_HOME"] = str(home)

    def __call__(self, *args: str, extra_env: dict[str, str] | None = None) -> Run:
        done = subprocess.run(
            [sys.executable, "-c", "from gridctl.cli.app import main; main()", *args],
            env={**self.env, **(extra_env or {})}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=180,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, extra_env: dict[str, str] | None = None) -> Any:
        run = self(*args, "--output", "json", extra_env=extra_env)
        assert run.code == 0, run.stderr
        return run.json()

    def state_dir(self, name: str = "local") -> Path:
        return self.home / "deployments" / name

    def contexts(self) -> dict[str, Any]:
        path = self.home / "contexts.yaml"
        return yaml.safe_load(path.read_text()) if path.exists() else {"contexts": {}, "current": None}

    def node(self, name: str = "local") -> Node:
        context = self.contexts()["contexts"][name]
        return Node(context["url"], token=context["token"])


def pid_exists(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gridctl, dict[str, Any]]]:
    """One deployment named 'local' shared by the read-only tests of this module, with its first output."""
    gridctl = Gridctl(tmp_path_factory.mktemp("gridctl-home"))
    first = gridctl.ok("deploy", "local", "--port", str(free_port()))
    try:
        yield gridctl, first
    finally:
        gridctl("destroy", "local", "--purge", "--yes")


@pytest.fixture
def gridctl(tmp_path: Path) -> Iterator[Gridctl]:
    """A fresh GRIDCTL_HOME; whatever a test deploys there is stopped afterwards."""
    tool = Gridctl(tmp_path / "home")
    yield tool
    for record in base.known_deployments(tool.home / "deployments"):
        tool("destroy", "local", "--name", record.name, "--yes")


class TestFirstDeploy:
    def test_reports_the_url_and_a_generated_owner_password(self, deployed: tuple[Gridctl, dict]) -> None:
        _, first = deployed
        assert first["state"] == "created" and first["provider"] == "local"
        assert first["url"].startswith("http://127.0.0.1:")
        assert first["owner_email"] == "owner@localhost"
        assert len(first["owner_password"]) >= 20

    def test_the_generated_password_logs_the_owner_in(self, deployed: tuple[Gridctl, dict]) -> None:
        _, first = deployed
        response = httpx.post(f"{first['url']}/api/v1/auth/login",
                              json={"email": first["owner_email"], "password": first["owner_password"]})
        assert response.status_code == 200

    def test_state_dir_and_its_files_are_owner_only(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, _ = deployed
        state_dir = gridctl.state_dir()
        assert state_dir.stat().st_mode & 0o777 == 0o700
        assert (state_dir / "node").stat().st_mode & 0o777 == 0o700
        for name in ("deployment.json", "processes.json"):
            assert (state_dir / name).stat().st_mode & 0o777 == 0o600
        assert (gridctl.home / "contexts.yaml").stat().st_mode & 0o777 == 0o600

    def test_the_setup_token_is_consumed(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, _ = deployed
        assert not (gridctl.state_dir() / "node" / "setup-token").exists()

    def test_saves_a_current_context_whose_token_authenticates(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        contexts = gridctl.contexts()
        assert contexts["current"] == "local"
        assert contexts["contexts"]["local"]["deployment"] == "local"
        assert contexts["contexts"]["local"]["url"] == first["url"]
        tokens = gridctl.node().http.get("/tokens")
        assert [t["name"] for t in tokens] == ["gridctl-cli"]

    def test_the_password_is_not_written_anywhere(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        for path in gridctl.home.rglob("*"):
            if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm"):
                assert first["owner_password"] not in path.read_text(errors="replace"), path


class TestStatus:
    def test_shows_the_deployment_running_and_healthy_with_its_pid(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        status = gridctl.ok("status")
        [row] = status["deployments"]
        assert row["name"] == "local" and row["url"] == first["url"]
        assert row["running"] is True and row["healthy"] is True
        assert row["pid"] == first["pid"] and pid_exists(row["pid"])
        assert status["current_context"] == {"name": "local", "url": first["url"], "deployment": "local"}

    def test_never_shows_the_token(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, _ = deployed
        token = gridctl.contexts()["contexts"]["local"]["token"]
        for output in ("json", "table"):
            run = gridctl("status", "--output", output)
            assert run.code == 0 and token not in run.stdout + run.stderr

    def test_table_lists_the_deployment_and_the_current_context(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        run = gridctl("status")
        assert run.code == 0
        assert first["url"] in run.stdout and "yes" in run.stdout
        assert "current context: local" in run.stderr

    def test_an_unknown_name_exits_with_not_found(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, _ = deployed
        run = gridctl("status", "nope")
        assert run.code == 5 and "no deployment named 'nope'" in run.stderr


class TestRedeployRunning:
    def test_reports_it_running_and_never_prints_the_password_again(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        again = gridctl.ok("deploy", "local")
        assert again["state"] == "running" and again["pid"] == first["pid"]
        assert "owner_password" not in again
        table = gridctl("deploy", "local")
        assert table.code == 0 and first["owner_password"] not in table.stdout + table.stderr

    def test_a_second_deployment_on_its_port_fails_clearly(self, deployed: tuple[Gridctl, dict]) -> None:
        gridctl, first = deployed
        port = first["url"].rsplit(":", 1)[1]
        run = gridctl("deploy", "local", "--name", "second", "--port", port)
        assert run.code == 6
        assert f"port {port} on 127.0.0.1 is already in use" in run.stderr and "Traceback" not in run.stderr
        assert not gridctl.state_dir("second").exists()
        assert "second" not in gridctl.contexts()["contexts"]


class TestLifecycle:
    def test_destroy_stops_redeploy_keeps_data_and_purge_removes_everything(self, gridctl: Gridctl) -> None:
        port = free_port()
        password_env = {"GRIDCTL_OWNER_PASSWORD": "operator chosen pw"}
        first = gridctl.ok("deploy", "local", "--name", "lab", "--port", str(port),
                           "--owner-email", "Ada@Example.com", extra_env=password_env)
        assert first["state"] == "created" and "owner_password" not in first  # given, so not echoed
        assert first["owner_email"] == "ada@example.com"
        gridctl.node("lab").http.post("/tokens", json={"name": "made-before-restart"})

        destroyed = gridctl.ok("destroy", "local", "--name", "lab", "--yes")
        assert destroyed["stopped_pids"] == [first["pid"]] and destroyed["purged"] is False
        assert not pid_exists(first["pid"]) and not port_open(port)
        [row] = gridctl.ok("status", "lab")["deployments"]
        assert row["running"] is False and row["healthy"] is False

        again = gridctl.ok("deploy", "local", "--name", "lab")
        assert again["state"] == "restarted" and again["url"] == first["url"]
        assert again["pid"] != first["pid"] and "owner_password" not in again
        names = [t["name"] for t in gridctl.node("lab").http.get("/tokens")]
        assert names == ["gridctl-cli", "made-before-restart"]
        login = httpx.post(f"{again['url']}/api/v1/auth/login",
                           json={"email": "ada@example.com", "password": "operator chosen pw"})
        assert login.status_code == 200

        purged = gridctl.ok("destroy", "local", "--name", "lab", "--purge", "--yes")
        assert purged == {"name": "lab", "stopped_pids": [again["pid"]], "purged": True, "context_removed": True}
        assert not pid_exists(again["pid"]) and not port_open(port)
        assert not gridctl.state_dir("lab").exists()
        assert "lab" not in gridctl.contexts()["contexts"]
        assert gridctl("status", "lab").code == 5

    def test_purge_without_yes_and_without_a_terminal_refuses_and_keeps_data(self, gridctl: Gridctl) -> None:
        first = gridctl.ok("deploy", "local", "--name", "keep", "--port", str(free_port()))
        run = gridctl("destroy", "local", "--name", "keep", "--purge")
        assert run.code == 2 and "--yes" in run.stderr
        assert gridctl.state_dir("keep").exists() and pid_exists(first["pid"])
        assert "keep" in gridctl.contexts()["contexts"]

    def test_destroy_without_yes_and_without_a_terminal_refuses_and_keeps_the_node_running(
        self, gridctl: Gridctl
    ) -> None:
        first = gridctl.ok("deploy", "local", "--name", "ask", "--port", str(free_port()))
        run = gridctl("destroy", "local", "--name", "ask", "--output", "json")
        assert run.code == 2 and "--yes" in run.stderr and run.stdout == ""
        assert pid_exists(first["pid"])
        [row] = gridctl.ok("status", "ask")["deployments"]
        assert row["running"] is True

    def test_fewer_workers_on_redeploy_asks_first_and_says_which_stop(self, gridctl: Gridctl) -> None:
        first = gridctl.ok("deploy", "local", "--name", "pool", "--port", str(free_port()))
        assert first["workers"] == 0
        state_dir = gridctl.state_dir("pool")
        # A stand-in Worker process (a real Ray Worker needs a Ray head): tracked as the provider tracks one.
        worker = processes.start("worker-1", ["sleep", "300"], env=dict(os.environ), cwd=state_dir,
                                 log=state_dir / "logs" / "worker-1.log")
        ProcessTable(state_dir).put(worker)
        try:
            kept = gridctl.ok("deploy", "local", "--name", "pool")  # no --workers: the Worker stays
            assert kept["state"] == "running" and kept["workers"] == 1 and processes.is_alive(worker)

            refused = gridctl("deploy", "local", "--name", "pool", "--workers", "0", "--output", "json")
            assert refused.code == 2 and refused.stdout == ""
            assert "stops worker-1" in refused.stderr.replace("\n", " ") and "--yes" in refused.stderr
            assert processes.is_alive(worker)

            done = gridctl.ok("deploy", "local", "--name", "pool", "--workers", "0", "--yes")
            assert done["workers"] == 0 and not processes.is_alive(worker)
        finally:
            processes.stop(worker, timeout=5)

    def test_a_node_that_cannot_start_fails_with_the_log_tail(self, gridctl: Gridctl) -> None:
        run = gridctl("deploy", "local", "--port", str(free_port()),
                      extra_env={"GRID_NODE_DATABASE_URL": "nosuchdriver://nowhere"})
        assert run.code == 1
        assert "the Node exited during start-up" in run.stderr and "node.log" in run.stderr
        assert "nosuchdriver" in run.stderr  # the log's tail explains why
        assert "Traceback (most recent call last)" not in run.stderr.split("last lines of")[0]


class TestUsageErrors:
    @pytest.mark.parametrize("args", [
        ["deploy", "local", "--bogus"],
        ["deploy", "local", "--port", "0"],
        ["deploy", "local", "--port", "http"],
        ["deploy", "local", "--name", "Not_A_Name"],
        ["deploy", "local", "--owner-password", "short"],
        ["deploy", "local", "--owner-email", "not-an-email"],
        ["destroy", "local", "--name", "../etc"],
    ])
    def test_bad_options_exit_with_code_2_and_start_nothing(self, gridctl: Gridctl, args: list[str]) -> None:
        run = gridctl(*args)
        assert run.code == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert not (gridctl.home / "deployments").exists() or not any((gridctl.home / "deployments").iterdir())

    def test_destroying_an_unknown_deployment_exits_with_not_found(self, gridctl: Gridctl) -> None:
        run = gridctl("destroy", "local", "--name", "ghost")
        assert run.code == 5 and "no deployment named 'ghost'" in run.stderr


class TestProviderRegistry:
    def test_local_is_available_and_ready(self, tmp_path: Path) -> None:
        providers = base.available_providers()
        assert providers["local"] is LocalProvider
        assert LocalProvider(tmp_path).check_credentials() is None

    def test_a_provider_whose_sdk_is_missing_does_not_appear(self, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
        monkeypatch.setitem(base._REGISTRY, "nocloud", "providers.nocloud_sdk_missing.provider:NoCloud")
        assert "nocloud" not in base.available_providers()
        with pytest.raises(GridctlError, match="not available"):
            base.get_provider("nocloud", tmp_path)

    def test_unsupported_features_are_refused_with_their_reason_before_anything_starts(
        self, tmp_path: Path
    ) -> None:
        provider = LocalProvider(tmp_path)
        assert provider.supports(Feature.network) and provider.supports(Feature.workers)
        assert not provider.supports(Feature.managed_database)
        with pytest.raises(Unsupported, match="uses SQLite in its state directory"):
            provider.deploy(DeploymentSpec(name="w", database="managed"))
        assert not (tmp_path / "w").exists()

    def test_preview_of_a_new_deployment_changes_nothing(self, tmp_path: Path) -> None:
        plan = LocalProvider(tmp_path).preview(DeploymentSpec(name="p", port=9999))
        assert [(c.action, c.kind) for c in plan] == [("create", "directory"), ("start", "process"),
                                                      ("create", "user")]
        assert not (tmp_path / "p").exists()

    @pytest.mark.parametrize("name", ["", "UPPER", "-lead", "trail-", "a/b", "x" * 41])
    def test_deployment_names_must_be_portable(self, name: str) -> None:
        with pytest.raises(ValueError, match="lowercase"):
            DeploymentSpec(name=name)
