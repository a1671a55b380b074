"""Each cloud's machines, as its program renders them, checked by the tools the machines run: cloud-init's
schema, systemd's verifier and Caddy's config adapter (tests/rehearsal/machines.py says how)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.rehearsal.machines import CLOUDS, TOOLS, machines, run, unit_root, written_files

PUBLIC_ADDRESS = "192.0.2.10"  # what the programs' mocks give the Node's static address
NETWORK_ADDRESS = "192.0.2.11"  # ... and the Network machine's (providers/cloud.py offline_public_address)


@pytest.fixture(params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_tools_are_installed() -> None:
    """Debian's cloud-init, systemd-analyze and Caddy: the rehearsal uses the real ones, never a stand-in."""
    assert all(TOOLS.values()), TOOLS


class TestCloudInit:
    def test_the_node_and_two_workers_pass_cloud_inits_own_schema(self, cloud: str, tmp_path: Path) -> None:
        rendered = machines(cloud)
        assert len(rendered.workers) == 2
        for i, user_data in enumerate((rendered.node, *rendered.workers)):
            path = tmp_path / f"{cloud}-{i}.yaml"
            path.write_text(user_data)
            done = run("cloud-init", "schema", "--config-file", str(path))
            assert done.returncode == 0, done.stdout + done.stderr
            assert "Valid cloud-config" in done.stdout

    def test_the_network_machine_passes_cloud_inits_own_schema(self, cloud: str, tmp_path: Path) -> None:
        user_data = machines(cloud, network=True).network
        assert "grid-network.service" in user_data
        path = tmp_path / f"{cloud}-network.yaml"
        path.write_text(user_data)
        done = run("cloud-init", "schema", "--config-file", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Valid cloud-config" in done.stdout

    def test_without_network_there_is_no_network_machine(self, cloud: str) -> None:
        assert machines(cloud).network == ""

    def test_a_schema_error_is_caught(self, tmp_path: Path) -> None:
        """The check can fail: a user-data with a mistyped module key is refused."""
        path = tmp_path / "bad.yaml"
        path.write_text(machines("aws").node.replace("ssh_pwauth: false", "ssh_pwauth: [nope]"))
        done = run("cloud-init", "schema", "--config-file", str(path))
        assert done.returncode != 0


class TestSystemdUnits:
    @pytest.mark.parametrize("role", ["node", "worker"])
    def test_every_unit_passes_systemd_analyze_verify(self, cloud: str, role: str, tmp_path: Path) -> None:
        rendered = machines(cloud)
        files = written_files(rendered.node if role == "node" else rendered.workers[0])
        # On the Node, Caddy's own unit too, with the drop-in that gives it the public address.
        units = unit_root(tmp_path, files, ("caddy.service",) if role == "node" else ())
        expected = {"node": {"ray-head.service", "grid-node.service", "caddy.service"},
                    "worker": {"ray-worker.service"}}[role]
        assert {unit.name for unit in units} == expected
        done = run("systemd-analyze", "verify", f"--root={tmp_path}", "--man=no", *map(str, units))
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "", done.stderr  # not even a warning (an unknown key, a bad value)

    def test_the_network_machines_units_pass_systemd_analyze_verify(self, cloud: str, tmp_path: Path) -> None:
        files = written_files(machines(cloud, network=True).network)
        units = unit_root(tmp_path, files, ("caddy.service",))
        assert {unit.name for unit in units} == {"grid-network.service", "caddy.service"}
        done = run("systemd-analyze", "verify", f"--root={tmp_path}", "--man=no", *map(str, units))
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip() == "", done.stderr

    def test_a_bad_unit_is_caught(self, tmp_path: Path) -> None:
        files = written_files(machines("gcp").node)
        path = "/etc/systemd/system/grid-node.service"
        files[path] = files[path].replace("PrivateTmp=true", "PrivateTmp=sometimes")
        units = unit_root(tmp_path, files)
        done = run("systemd-analyze", "verify", f"--root={tmp_path}", "--man=no", *map(str, units))
        assert "grid-node.service:" in done.stderr and "Failed to parse boolean value" in done.stderr


class TestCaddy:
    def _caddy(self, tmp_path: Path, caddyfile: str, *command: str,
               address: str = PUBLIC_ADDRESS) -> tuple[int, str, str]:
        path = tmp_path / "Caddyfile"
        path.write_text(caddyfile)
        env = {**os.environ, "GRID_PUBLIC_ADDRESS": address, "HOME": str(tmp_path),
               "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
        done = run("caddy", *command, "--config", str(path), "--adapter", "caddyfile", env=env, cwd=tmp_path)
        return done.returncode, done.stdout, done.stderr

    def test_the_caddyfile_adapts_to_tls_on_the_public_address_with_it_as_default_sni(
        self, cloud: str, tmp_path: Path
    ) -> None:
        files = written_files(machines(cloud).node)
        assert files["/etc/gridctl/caddy.env"] == f"GRID_PUBLIC_ADDRESS={PUBLIC_ADDRESS}\n"
        code, out, err = self._caddy(tmp_path, files["/etc/caddy/Caddyfile"], "adapt")
        assert code == 0, err
        config = json.loads(out)
        policies = config["apps"]["http"]["servers"]["srv0"]["tls_connection_policies"]
        assert {p.get("default_sni") for p in policies} == {PUBLIC_ADDRESS}
        assert json.dumps(config).count("127.0.0.1:8000") == 1  # the API, on loopback only
        assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["module"] == "internal"
        code, _, err = self._caddy(tmp_path, files["/etc/caddy/Caddyfile"], "validate")
        assert code == 0, err

    def test_with_a_domain_caddy_asks_acme_for_it(self, tmp_path: Path) -> None:
        files = written_files(machines("aws", domain="grid.example.org").node)
        code, out, err = self._caddy(tmp_path, files["/etc/caddy/Caddyfile"], "adapt")
        assert code == 0, err
        config = json.loads(out)
        route_hosts = config["apps"]["http"]["servers"]["srv0"]["routes"][0]["match"][0]["host"]
        assert route_hosts == ["grid.example.org"] and "internal" not in out

    def test_the_network_machine_serves_its_own_address_with_its_own_ca_even_with_a_domain(
        self, cloud: str, tmp_path: Path
    ) -> None:
        """--domain names the Node: the Network machine must not ask ACME for it (port 80 is not open to it)."""
        files = written_files(machines(cloud, network=True, domain="grid.example.org").network)
        assert files["/etc/gridctl/caddy.env"] == f"GRID_PUBLIC_ADDRESS={NETWORK_ADDRESS}\n"
        code, out, err = self._caddy(tmp_path, files["/etc/caddy/Caddyfile"], "adapt", address=NETWORK_ADDRESS)
        assert code == 0, err
        config = json.loads(out)
        assert "grid.example.org" not in out
        policies = config["apps"]["http"]["servers"]["srv0"]["tls_connection_policies"]
        assert {p.get("default_sni") for p in policies} == {NETWORK_ADDRESS}
        assert json.dumps(config).count("127.0.0.1:8000") == 1  # the Network's API, on loopback only
        assert config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["module"] == "internal"
        code, _, err = self._caddy(tmp_path, files["/etc/caddy/Caddyfile"], "validate", address=NETWORK_ADDRESS)
        assert code == 0, err
