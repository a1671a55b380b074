"""The templates every cloud renders: snapshots per cloud and role, and the renderer's rules.

Snapshots live in tests/snapshots/<cloud>-<role>.yaml. After a deliberate template change, rewrite them with
``GRIDCTL_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_templates.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from providers.aws import program as aws_program
from providers.azure import program as azure_program
from providers.gcp import program as gcp_program
from templates.render import TemplateError, available, render
from tests.cloud_checks import SECRETS, SSH_KEY, WIDER_CIDR, settings

SNAPSHOTS = Path(__file__).parent / "snapshots"
PROGRAMS = {"aws": aws_program, "gcp": gcp_program, "azure": azure_program}
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}
ROLES = ("node", "worker", "network")
CASES = [(cloud, role) for cloud in PROGRAMS for role in ROLES]


PUBLIC_ADDRESS = "192.0.2.10"  # what the program passes: the machine's static public address


def rendered(cloud: str, role: str, **overrides) -> str:
    spec = settings(region=REGIONS[cloud], managed_database=True, network=True, **overrides)
    return PROGRAMS[cloud].CLOUD_INIT.user_data(role, spec, "" if role == "worker" else PUBLIC_ADDRESS)


def embedded_file(cloud_init: str, path: str) -> str:
    files = {entry["path"]: entry["content"] for entry in yaml.safe_load(cloud_init)["write_files"]}
    return files[path]


class TestSnapshots:
    @pytest.mark.parametrize(("cloud", "role"), CASES)
    def test_cloud_init_matches_its_snapshot(self, cloud, role):
        text = rendered(cloud, role)
        snapshot = SNAPSHOTS / f"{cloud}-{role}.yaml"
        if os.environ.get("GRIDCTL_UPDATE_SNAPSHOTS"):
            snapshot.write_text(text)
        assert snapshot.exists(), f"no snapshot {snapshot.name}: run with GRIDCTL_UPDATE_SNAPSHOTS=1"
        assert text == snapshot.read_text()


class TestCloudInit:
    @pytest.mark.parametrize(("cloud", "role"), CASES)
    def test_is_cloud_config_yaml(self, cloud, role):
        text = rendered(cloud, role)
        assert text.startswith("#cloud-config\n")
        document = yaml.safe_load(text)
        assert document["ssh_pwauth"] is False
        assert document["runcmd"]

    @pytest.mark.parametrize(("cloud", "role"), CASES)
    def test_holds_no_secret_value(self, cloud, role):
        text = rendered(cloud, role)
        assert not [value for value in SECRETS.values() if value in text]

    @pytest.mark.parametrize(("cloud", "role"), CASES)
    def test_the_bootstrap_script_is_valid_python(self, cloud, role):
        source = embedded_file(rendered(cloud, role), "/opt/gridctl/bootstrap.py")
        compile(source, f"{cloud}-{role}-bootstrap.py", "exec")

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_workers_read_only_the_ray_token(self, cloud):
        source = embedded_file(rendered(cloud, "worker"), "/opt/gridctl/bootstrap.py")
        assert "ray-token" in source
        assert "setup-token" not in source and "database-url" not in source

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_the_node_serves_tls_through_caddy_and_the_api_on_loopback(self, cloud):
        text = rendered(cloud, "node")
        assert "tls internal" in embedded_file(text, "/etc/caddy/Caddyfile")
        assert "GRID_NODE_HOST=127.0.0.1" in embedded_file(text, "/etc/gridctl/node.env")

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_a_domain_gets_a_public_certificate_instead(self, cloud):
        caddyfile = embedded_file(rendered(cloud, "node", domain="grid.example.org"), "/etc/caddy/Caddyfile")
        assert "grid.example.org {" in caddyfile and "tls internal" not in caddyfile

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_ray_uses_token_authentication_on_both_sides(self, cloud):
        head = embedded_file(rendered(cloud, "node"), "/etc/systemd/system/ray-head.service")
        worker = embedded_file(rendered(cloud, "worker"), "/etc/systemd/system/ray-worker.service")
        for unit in (head, worker):
            assert "RAY_AUTH_MODE=token" in unit
        assert "--address=10.42.1.10:6379" in worker

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_an_operator_account_exists_only_when_ssh_is_asked_for(self, cloud):
        assert "ssh_authorized_keys" not in rendered(cloud, "node")
        with_ssh = rendered(cloud, "node", ssh_cidrs=(WIDER_CIDR,), ssh_public_key=SSH_KEY)
        users = yaml.safe_load(with_ssh)["users"]
        assert [u["ssh_authorized_keys"] for u in users if "ssh_authorized_keys" in u] == [[SSH_KEY]]


class TestNodeEnv:
    @pytest.mark.parametrize(("cloud", "driver"), [("aws", "s3fs"), ("gcp", "gcsfs"), ("azure", "adlfs")])
    def test_the_node_reads_its_bucket_and_the_ray_service_from_it(self, cloud, driver, monkeypatch):
        from grid_runtime.core.settings import NodeSettings

        text = rendered(cloud, "node")
        for line in embedded_file(text, "/etc/gridctl/node.env").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                monkeypatch.setenv(name, value)
        node = NodeSettings()
        scheme = {"aws": "s3", "gcp": "gs", "azure": "az"}[cloud]
        assert node.resolved_object_store_url.startswith(f"{scheme}://")
        from providers.cloud import NODE_PRIVATE_IP, RAY_PORTS

        assert node.ray_address == f"{NODE_PRIVATE_IP}:{RAY_PORTS.gcs_port}"  # ray-head.service's, not its own
        assert str(node.ray_token_file) == "/var/lib/gridctl/secrets/ray-token"
        # Caddy on the machine forwards each client's address: login limits and the audit log see the client, not
        # 127.0.0.1 for everyone (one address's failed logins would lock every user out).
        assert node.trusted_proxies == ["127.0.0.1"]
        if cloud == "azure":  # adlfs needs the account; the VM's managed identity signs in
            assert node.object_store_options == {"account_name": node.object_store_options["account_name"],
                                                 "anon": False}
        # the machine installs the store's driver with gridctl
        bootstrap = embedded_file(text, "/opt/gridctl/bootstrap.py")
        assert f'"extra": "{ {"aws": "s3", "gcp": "gcs", "azure": "azure-storage"}[cloud] }"' in bootstrap
        assert "f\"gridctl[{BUILD['extra']}] @ file://{wheel}\"" in bootstrap


class TestRender:
    def test_a_missing_variable_is_an_error_naming_it(self):
        with pytest.raises(TemplateError, match="'deployment' is undefined"):
            render("systemd/grid-node.service.j2")

    def test_a_missing_template_is_an_error_naming_it_and_the_known_ones(self):
        with pytest.raises(TemplateError, match="no template 'cloud-init/nothing.yaml.j2'.*cloud-init/node.yaml.j2"):
            render("cloud-init/nothing.yaml.j2")

    def test_lists_every_template(self):
        names = available()
        assert {
            "cloud-init/node.yaml.j2",
            "cloud-init/worker.yaml.j2",
            "cloud-init/network.yaml.j2",
            "systemd/grid-node.service.j2",
            "config/Caddyfile.j2",
        } <= set(names)


def exec_start(unit: str) -> list[str]:
    """The ExecStart= command of a unit, split as systemd splits it (systemd.syntax(7): a quote opens an item
    only at its start; the rest of the item is literal)."""
    import shlex

    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def flag(argv: list[str], name: str) -> str:
    return next(arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{name}="))


class TestRay:
    """Issue 12, Measured 2, 3, 7 and 10 (the head)."""

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_the_worker_port_range_holds_none_of_rays_default_ports(self, cloud):
        from providers.cloud import RAY_DEFAULT_PORTS

        for role, unit in (("node", "ray-head.service"), ("worker", "ray-worker.service")):
            argv = exec_start(embedded_file(rendered(cloud, role), f"/etc/systemd/system/{unit}"))
            first, last = int(flag(argv, "--min-worker-port")), int(flag(argv, "--max-worker-port"))
            assert not [port for port in RAY_DEFAULT_PORTS.values() if first <= port <= last]
            assert 10001 not in range(first, last + 1)
            # nor one of the ports given to Ray's own servers
            servers = {int(flag(argv, f"--{name}")) for name in ("node-manager-port", "object-manager-port",
                                                                  "runtime-env-agent-port", "metrics-export-port")}
            assert not [port for port in servers if first <= port <= last]

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_the_head_keeps_its_session_sockets_where_the_sandboxed_node_can_reach_them(self, cloud):
        text = rendered(cloud, "node")
        head = exec_start(embedded_file(text, "/etc/systemd/system/ray-head.service"))
        node_unit = embedded_file(text, "/etc/systemd/system/grid-node.service")
        temp_dir = flag(head, "--temp-dir")
        writable = [line.split("=", 1)[1] for line in node_unit.splitlines() if line.startswith("ReadWritePaths=")]
        assert any(temp_dir.startswith(path.rstrip("/") + "/") for path in writable)
        if "PrivateTmp=true" in node_unit:  # a private /tmp would hide a session kept there
            assert not temp_dir.startswith(("/tmp", "/var/tmp"))
        assert temp_dir in [cmd[-1] for cmd in yaml.safe_load(text)["runcmd"] if cmd[0] == "install"]

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_the_head_runs_no_tasks_and_bounds_its_object_store(self, cloud):
        head = exec_start(embedded_file(rendered(cloud, "node"), "/etc/systemd/system/ray-head.service"))
        assert flag(head, "--num-cpus") == "0" and flag(head, "--num-gpus") == "0"
        assert 256 * 1024**2 <= int(flag(head, "--object-store-memory")) <= 2 * 1024**3

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_workers_offer_the_resource_every_job_requires(self, cloud):
        import json

        from grid_runtime.compute.cluster import WORKER_RESOURCE

        worker = exec_start(embedded_file(rendered(cloud, "worker"), "/etc/systemd/system/ray-worker.service"))
        assert json.loads(flag(worker, "--resources")) == {WORKER_RESOURCE: 1}


class TestCaddy:
    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_a_client_without_sni_gets_the_public_address_certificate(self, cloud):
        """Issue 12, Measured 4: clients dialling the bare IP send no SNI; Caddy needs default_sni."""
        text = rendered(cloud, "node")
        caddyfile = embedded_file(text, "/etc/caddy/Caddyfile")
        assert "default_sni {$GRID_PUBLIC_ADDRESS}" in caddyfile
        assert embedded_file(text, "/etc/gridctl/caddy.env") == f"GRID_PUBLIC_ADDRESS={PUBLIC_ADDRESS}\n"
        with_domain = embedded_file(rendered(cloud, "node", domain="grid.example.org"), "/etc/caddy/Caddyfile")
        assert "default_sni" not in with_domain


class TestInstall:
    """Issue 12, Measured 1: the machines install the operator's build, checked by sha256, from their bucket."""

    @pytest.mark.parametrize(("cloud", "role"), CASES)
    def test_the_first_command_installs_the_verified_build_with_the_system_python(self, cloud, role):
        runcmd = yaml.safe_load(rendered(cloud, role))["runcmd"]
        assert runcmd[0] == ["python3", "/opt/gridctl/bootstrap.py", "install"]
        assert not [cmd for cmd in runcmd if "pip" in " ".join(map(str, cmd))]

    @pytest.mark.parametrize("cloud", PROGRAMS)
    def test_the_bootstrap_knows_the_digests_and_installs_the_wheel_by_path(self, cloud):
        from tests.cloud_checks import fake_build

        source = embedded_file(rendered(cloud, "worker"), "/opt/gridctl/bootstrap.py")
        build = fake_build()
        assert build.wheel_sha256 in source and build.constraints_sha256 in source
        assert '"--constraint", constraints' in source and "download.pytorch.org/whl/cpu" in source
