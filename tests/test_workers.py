"""The Ray cluster glue without starting Ray: the token, the command lines, ports; and the local provider's
Worker scaling refusing when the deployment is not running. The running cluster is in test_training_e2e.py."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from grid_runtime.compute import cluster
from grid_runtime.core.settings import NodeSettings


class TestToken:
    def test_is_made_once_and_readable_by_the_owner_only(self, tmp_path: Path) -> None:
        path = cluster.ensure_token(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        first = path.read_text()
        assert len(first) == 64
        assert cluster.ensure_token(tmp_path).read_text() == first

    def test_travels_as_a_file_path_never_as_a_value(self, tmp_path: Path) -> None:
        path = cluster.ensure_token(tmp_path)
        env = cluster.ray_env(path, {"RAY_AUTH_TOKEN": "stray"})
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN_PATH"] == str(path)
        assert "RAY_AUTH_TOKEN" not in env
        argv = cluster.worker_argv("127.0.0.1:23456")
        assert path.read_text() not in " ".join(argv)


class TestCommandLines:
    def test_the_head_has_no_compute_and_does_not_use_port_6379_by_default(self, tmp_path: Path) -> None:
        settings = NodeSettings(state_dir=tmp_path)
        assert settings.ray_port != 6379
        argv = cluster.head_argv(cluster.HeadConfig(port=settings.ray_port), tmp_path)
        assert "--num-cpus=0" in argv and "--head" in argv and "--block" in argv
        assert f"--port={settings.ray_port}" in argv
        assert "--include-dashboard=false" in argv

    def test_a_worker_joins_the_address_and_offers_the_worker_resource(self) -> None:
        argv = cluster.worker_argv("10.0.0.5:6390", num_cpus=2)
        assert "--address=10.0.0.5:6390" in argv and "--num-cpus=2" in argv and "--block" in argv
        assert '{"grid_worker": 1}' in argv

    def test_free_ports_stay_out_of_the_ephemeral_range(self) -> None:
        ports = {cluster.free_port() for _ in range(50)}
        assert all(20000 <= p < 32000 for p in ports)


class TestLocalWorkers:
    def test_scaling_refuses_when_the_deployment_is_not_running(self, tmp_path: Path) -> None:
        from providers.base import DeploymentRecord, ProviderError
        from providers.local.provider import LocalProvider

        provider = LocalProvider(tmp_path)
        state_dir = provider.state_dir("idle")
        state_dir.mkdir(parents=True)
        DeploymentRecord(name="idle", provider="local", url="http://127.0.0.1:1", created_at="now",
                         owner_email="owner@localhost").save(state_dir)
        with pytest.raises(ProviderError, match="is not running"):
            provider.scale_workers("idle", 2)
