"""``gridctl deploy aws|gcp|azure --network`` on every cloud, under Pulumi's mocks: the Network machine boots
``python -m grid_runtime.network`` under systemd behind Caddy, with its SQLite database and its setup token in its
state dir (the token delivered as the Node's is); the Node is told the URL a Network reaches it at; the Network's
machine is reached on 443 only; without --network nothing of it is declared. cloud-init's schema, systemd's
verifier and Caddy's adapter check the same user-data in tests/rehearsal/test_first_boot.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from grid_runtime.core.settings import NetworkSettings, NodeSettings
from grid_runtime.network.accounts import SETUP_TOKEN_FILE
from providers import cloud
from providers.aws import program as aws_program
from providers.azure import program as azure_program
from providers.gcp import program as gcp_program
from tests.cloud_checks import OPERATOR_CIDR, of_type, one, settings
from tests.rehearsal.machines import REGIONS, machines, written_files

PROGRAMS = {"aws": aws_program, "gcp": gcp_program, "azure": azure_program}
PUBLIC_ADDRESS = "192.0.2.10"  # the mocks' static public address of every machine


@pytest.fixture(params=list(PROGRAMS))
def cloud_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def load_env(text: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An EnvironmentFile's assignments, set in the environment as systemd would set them."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
            monkeypatch.setenv(name, value)
    return values


class TestTheNetworkMachine:
    def test_it_runs_the_network_service_under_systemd_after_its_secrets(self, cloud_name: str) -> None:
        user_data = machines(cloud_name, network=True).network
        unit = written_files(user_data)["/etc/systemd/system/grid-network.service"]
        assert "ExecStart=/opt/gridctl/venv/bin/python -m grid_runtime.network\n" in unit
        assert "User=grid\n" in unit and "EnvironmentFile=/etc/gridctl/network.env\n" in unit
        runcmd = [" ".join(map(str, command)) for command in yaml.safe_load(user_data)["runcmd"]]
        secrets = runcmd.index("python3 /opt/gridctl/bootstrap.py secrets")
        started = runcmd.index("systemctl enable --now grid-network.service")
        assert secrets < started  # the setup token is in place before the service first starts
        assert "/var/lib/gridctl/network" in runcmd[secrets - 1]  # its state dir, made owner-only first
        assert not any("ray" in command or "grid-node" in command for command in runcmd)

    def test_its_database_and_setup_token_are_in_its_state_dir(
        self, cloud_name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        files = written_files(machines(cloud_name, network=True, managed_database=True).network)
        env = load_env(files["/etc/gridctl/network.env"], monkeypatch)
        network = NetworkSettings()
        assert network.state_dir == Path("/var/lib/gridctl/network")
        assert (network.host, network.port) == ("127.0.0.1", cloud.API_PORT)  # behind Caddy only
        # Caddy forwards each client's address: per-address bounds count clients, not the proxy (docs/network.md).
        assert network.trusted_proxies == ["127.0.0.1"]
        # SQLite on its own disk: the managed database is the Node's, never handed to the Network.
        assert "GRID_NETWORK_DATABASE_URL" not in env
        assert network.resolved_database_url == "sqlite:////var/lib/gridctl/network/network.db"
        # The setup token goes where the service adopts it (network/accounts.py), and only it is read.
        spec = settings(region=REGIONS[cloud_name], network=True, managed_database=True)
        [secret] = cloud.role_secrets("network", spec, lambda key: key)
        assert secret["key"] == cloud.NETWORK_SETUP_TOKEN
        assert secret["path"] == str(network.state_dir / SETUP_TOKEN_FILE)
        bootstrap = files["/opt/gridctl/bootstrap.py"]
        assert secret["path"] in bootstrap
        assert cloud.DATABASE_URL not in bootstrap.split("SECRETS =", 1)[1].split("\n", 1)[0]

    def test_its_tls_root_goes_to_its_own_object(self, cloud_name: str) -> None:
        files = written_files(machines(cloud_name, network=True).network)
        assert f"CA_OBJECT = {json.dumps(cloud.NETWORK_CA_OBJECT)}" in files["/opt/gridctl/bootstrap.py"]
        assert cloud.NETWORK_CA_OBJECT != cloud.CA_OBJECT


class TestTheNode:
    @pytest.mark.parametrize(("domain", "url"), [(None, f"https://{PUBLIC_ADDRESS}"),
                                                 ("grid.example.org", "https://grid.example.org")])
    def test_is_told_the_url_a_network_reaches_it_at(
        self, cloud_name: str, domain: str | None, url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        files = written_files(machines(cloud_name, network=True, domain=domain).node)
        load_env(files["/etc/gridctl/node.env"], monkeypatch)
        assert NodeSettings().public_url == url


NODE_ADDRESS = cloud.OFFLINE_NODE_ADDRESS  # the mocks' public addresses: the Node's and the Network machine's
NETWORK_ADDRESS = cloud.OFFLINE_NETWORK_ADDRESS


def ingress(cloud_name: str, plan: list, role: str) -> set[tuple[str, str]]:
    """(ports, source) of every inbound rule that reaches the ``role`` machine (``node`` or ``network``)."""
    if cloud_name == "aws":
        prefix = {"node": "demo-net-node-", "network": "demo-net-network-"}[role]  # the machine's group's rules
        rules = [r.inputs for r in of_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                 if r.name.startswith(prefix)]
        return {(f"{int(r['fromPort'])}-{int(r['toPort'])}", r.get("cidrIpv4") or "group") for r in rules}
    if cloud_name == "gcp":
        tag = f"gridctl-demo-{role}"
        found = set()
        for r in of_type(plan, "gcp:compute/firewall:Firewall"):
            if tag in r.inputs.get("targetTags", []) and r.inputs["direction"] == "INGRESS":
                ports = ",".join(p for allow in r.inputs["allows"] for p in allow["ports"])
                for source in r.inputs.get("sourceRanges") or r.inputs.get("sourceTags") or ["?"]:
                    found.add((ports, source))
        return found
    # Azure: both machines' NICs sit in the public subnet under the Node's NSG; a rule reaches one unless it
    # names another destination.
    private = {"node": cloud.NODE_PRIVATE_IP, "network": cloud.NETWORK_PRIVATE_IP}[role]
    nsg = one(plan, "azure-native:network:NetworkSecurityGroup", "demo-net-node-nsg").inputs["securityRules"]
    reaching = [r for r in nsg if r["access"] == "Allow"
                and r["destinationAddressPrefix"] in ("*", f"{private}/32")]
    return {(",".join(r["destinationPortRanges"]), ",".join(r.get("sourceAddressPrefixes") or [])
             or r["sourceAddressPrefix"]) for r in reaching}


def https(cloud_name: str) -> str:
    return "443-443" if cloud_name == "aws" else "443"


class TestIngress:
    @pytest.mark.parametrize("domain", [None, "grid.example.org"])
    def test_the_network_machine_is_reached_on_443_from_the_allowed_cidrs_and_its_node_only(
        self, cloud_name: str, domain: str | None
    ) -> None:
        plan = PROGRAMS[cloud_name].plan(settings(region=REGIONS[cloud_name], network=True, workers=2,
                                                  domain=domain), redact=False)
        assert ingress(cloud_name, plan, "network") == {(https(cloud_name), OPERATOR_CIDR),
                                                         (https(cloud_name), f"{NODE_ADDRESS}/32")}

    def test_the_nodes_443_also_accepts_the_network_machines_address_and_nothing_else_is_opened(
        self, cloud_name: str
    ) -> None:
        program = PROGRAMS[cloud_name]
        with_network = ingress(cloud_name, program.plan(settings(region=REGIONS[cloud_name], network=True),
                                                         redact=False), "node")
        without = ingress(cloud_name, program.plan(settings(region=REGIONS[cloud_name]), redact=False), "node")
        assert (https(cloud_name), OPERATOR_CIDR) in without
        assert not any(source.startswith("192.0.2.") for _, source in without)  # no machine's address without it
        assert with_network - without == {(https(cloud_name), f"{NETWORK_ADDRESS}/32")}

    def test_the_rules_name_the_addresses_the_machines_are_given(self, cloud_name: str) -> None:
        """The sources come from the machines' address outputs: the Network's user-data serves on the address
        the Node's rule lets in, and the Node's on the address the Network's rule lets in."""
        spec = settings(region=REGIONS[cloud_name], network=True)
        plan = PROGRAMS[cloud_name].plan(spec, redact=False)
        caddy = {role: load_caddy_address(user_data) for role, user_data in
                 (("node", machines(cloud_name, network=True).node),
                  ("network", machines(cloud_name, network=True).network))}
        assert caddy == {"node": NODE_ADDRESS, "network": NETWORK_ADDRESS}
        assert (https(cloud_name), f"{caddy['node']}/32") in ingress(cloud_name, plan, "network")
        assert (https(cloud_name), f"{caddy['network']}/32") in ingress(cloud_name, plan, "node")


def load_caddy_address(user_data: str) -> str:
    env = written_files(user_data)["/etc/gridctl/caddy.env"]
    return dict(line.split("=", 1) for line in env.splitlines() if "=" in line)["GRID_PUBLIC_ADDRESS"]


class TestWithoutNetwork:
    def test_nothing_of_it_is_declared(self, cloud_name: str) -> None:
        program = PROGRAMS[cloud_name]
        with_network = program.plan(settings(region=REGIONS[cloud_name], network=True), redact=False)
        without = program.plan(settings(region=REGIONS[cloud_name]), redact=False)
        ours = [r.name for r in with_network if r.name.startswith("demo-network")]
        assert ours  # the machine, its address, its identity...
        assert [r.name for r in without if r.name.startswith("demo-network")] == []
        assert not any(cloud.NETWORK_SETUP_TOKEN in r.name for r in without)
        assert any(cloud.NETWORK_SETUP_TOKEN in r.name for r in with_network)  # its secret, in the store
