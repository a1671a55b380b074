"""The rendered bootstrap.py, run outside a VM against a fake of the cloud's endpoints (providers/
cloud_fakes.py): it fetches the operator's build with the machine's identity, refuses a file whose sha256 is not
the deployed one, waits out a role grant that has not propagated yet, and writes secrets owner-only."""

from __future__ import annotations

import getpass
import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from providers.cloud_fakes import FakeCloud
from tests.cloud_checks import SECRETS, fake_build
from tests.rehearsal.machines import machines, written_files


@pytest.fixture
def fake_cloud() -> Any:
    cloud = FakeCloud().start()
    yield cloud
    cloud.stop()


def bootstrap_source(cloud: str, role: str = "worker") -> str:
    rendered = machines(cloud, managed_database=True)  # the Node also reads the database's URL
    return written_files(rendered.node if role == "node" else rendered.workers[0])["/opt/gridctl/bootstrap.py"]


def load_bootstrap(cloud: str, role: str, tmp_path: Path, env: dict[str, str],
                   monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The rendered script as a module, its paths under ``tmp_path`` (GRIDCTL_PREFIX), endpoints at the fake."""
    path = tmp_path / f"bootstrap-{cloud}-{role}.py"
    path.write_text(bootstrap_source(cloud, role))
    for name, value in {**env, "GRIDCTL_PREFIX": str(tmp_path / "root"), "GRIDCTL_RETRY_SECONDS": "0",
                        "GRIDCTL_SERVICE_USER": getpass.getuser()}.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(f"bootstrap_{cloud}_{role}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ship_build(fake: FakeCloud, module: ModuleType) -> None:
    build = fake_build()
    fake.objects[module.BUILD["wheel_key"]] = Path(build.wheel_path).read_bytes()
    fake.objects[module.BUILD["constraints_key"]] = Path(build.constraints_path).read_bytes()


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
class TestFetchingTheBuild:
    def test_the_build_is_fetched_with_the_machines_token_and_kept_when_its_digest_matches(
        self, cloud: str, fake_cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        module = load_bootstrap(cloud, "worker", tmp_path, fake_cloud.environment(cloud), monkeypatch)
        ship_build(fake_cloud, module)
        dist = tmp_path / "root" / "opt" / "gridctl" / "dist"
        dist.mkdir(parents=True)
        wheel = module.fetch_verified(module.BUILD["wheel_key"], module.BUILD["wheel_sha256"],
                                      str(dist / module.BUILD["wheel_name"]))
        assert Path(wheel).read_bytes() == Path(fake_build().wheel_path).read_bytes()
        assert any(module.BUILD["wheel_key"].split("/")[-1] in path for _, path in fake_cloud.requests)

    def test_a_file_whose_sha256_differs_is_refused_and_not_written(
        self, cloud: str, fake_cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        module = load_bootstrap(cloud, "worker", tmp_path, fake_cloud.environment(cloud), monkeypatch)
        ship_build(fake_cloud, module)
        fake_cloud.objects[module.BUILD["wheel_key"]] = b"a wheel someone swapped in the bucket\n"
        target = tmp_path / "wheel.whl"
        with pytest.raises(SystemExit, match="refusing to install it"):
            module.fetch_verified(module.BUILD["wheel_key"], module.BUILD["wheel_sha256"], str(target))
        assert not target.exists()

    def test_install_stops_before_any_pip_when_the_wheel_is_not_the_deployed_one(
        self, cloud: str, fake_cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        module = load_bootstrap(cloud, "worker", tmp_path, fake_cloud.environment(cloud), monkeypatch)
        ship_build(fake_cloud, module)
        fake_cloud.objects[module.BUILD["wheel_key"]] = b"tampered\n"
        script = tmp_path / "bootstrap.py"
        script.write_text(bootstrap_source(cloud))
        done = subprocess.run([sys.executable, str(script), "install"], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ))
        assert done.returncode != 0 and "refusing to install it" in done.stderr
        assert not (tmp_path / "root" / "opt" / "gridctl" / "venv").exists()  # no virtualenv, no pip run


class TestAzureGrantPropagation:
    def test_a_grant_that_has_not_propagated_yet_is_waited_for(
        self, fake_cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Issue 12, Measured 10: Azure answers 403 for minutes after a role assignment; the bootstrap retries."""
        module = load_bootstrap("azure", "worker", tmp_path, fake_cloud.environment("azure"), monkeypatch)
        ship_build(fake_cloud, module)
        fake_cloud.refusals = 3
        target = tmp_path / "wheel.whl"
        module.fetch_verified(module.BUILD["wheel_key"], module.BUILD["wheel_sha256"], str(target))
        assert target.exists() and fake_cloud.refusals == 0


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_the_nodes_secrets_are_written_owner_only_where_its_services_read_them(
    cloud: str, fake_cloud: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_bootstrap(cloud, "node", tmp_path, fake_cloud.environment(cloud), monkeypatch)
    values = {"setup-token": SECRETS.setup_token, "ray-token": SECRETS.ray_token}
    for secret in module.SECRETS:
        fake_cloud.secrets[secret["ref"]] = values.get(secret["key"], "postgresql+psycopg://db")
    root = tmp_path / "root" / "var" / "lib" / "gridctl"
    for directory in ("secrets", "node"):
        (root / directory).mkdir(parents=True)
    module.fetch_secrets()
    token = root / "secrets" / "ray-token"
    assert token.read_text() == SECRETS.ray_token + "\n"
    assert (root / "node" / "setup-token").read_text() == SECRETS.setup_token + "\n"
    for path in (token, root / "secrets" / "service.env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "GRID_NODE_DATABASE_URL=postgresql+psycopg://db\n" in (root / "secrets" / "service.env").read_text()
