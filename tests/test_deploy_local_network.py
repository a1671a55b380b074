"""``gridctl deploy local network``: a Network beside two local Nodes under other names and ports, real
processes under a temporary GRIDCTL_HOME; the Nodes join it with the CLI (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from providers import base
from tests.live import free_port
from tests.test_deploy_local import Gridctl

pytestmark = pytest.mark.slow


@pytest.fixture
def gridctl(tmp_path: Path) -> Iterator[Gridctl]:
    tool = Gridctl(tmp_path / "home")
    yield tool
    for record in base.known_deployments(tool.home / "deployments"):
        tool("destroy", "local", "--name", record.name, "--yes")


def test_a_network_beside_two_nodes_which_join_it(gridctl: Gridctl) -> None:
    network_port = free_port()
    network = gridctl.ok("deploy", "local", "network", "--name", "net", "--port", str(network_port))
    assert (network["state"], network["url"], network["context"]) == ("created", f"http://127.0.0.1:{network_port}",
                                                                      "net")
    assert network["owner_password"] and network["log"].endswith("network.log")
    for name in ("alpha", "beta"):
        assert gridctl.ok("deploy", "local", "--name", name, "--port", str(free_port()))["state"] == "created"

    as_alpha, as_beta = {"GRIDCTL_CONTEXT": "alpha"}, {"GRIDCTL_CONTEXT": "beta"}
    joined = gridctl.ok("network", "join", network["url"], extra_env=as_alpha)
    assert joined["state"] == "pending"
    pending = gridctl.ok("network", "associations", "list", "--network", "net")
    assert [(a["node_name"], a["node_url"], a["state"]) for a in pending] == [
        ("alpha", gridctl.contexts()["contexts"]["alpha"]["url"], "pending")]
    gridctl.ok("network", "associations", "approve", str(pending[0]["id"]), "--network", "net")
    assert gridctl.ok("network", "sync", str(joined["id"]), extra_env=as_alpha)["association"]["state"] == "approved"

    code = gridctl("network", "invite", "--network", "net").stderr.split("invitation: ")[1].split()[0]
    assert gridctl.ok("network", "join", network["url"], "--invitation", code, extra_env=as_beta)["state"] == \
        "approved"
    nodes = gridctl.ok("network", "nodes", "--network", "net")
    assert sorted(n["name"] for n in nodes) == ["alpha", "beta"]

    status = {d["name"]: d for d in gridctl.ok("status")["deployments"]}
    assert all(status[name]["running"] and status[name]["healthy"] for name in ("net", "alpha", "beta"))
    again = gridctl.ok("deploy", "local", "network", "--name", "net")
    assert again["state"] == "running" and "owner_password" not in again


def test_a_network_has_no_workers_and_a_name_keeps_its_kind(gridctl: Gridctl) -> None:
    refused = gridctl("deploy", "local", "network", "--name", "net", "--workers", "2")
    assert refused.code == 2 and "no Workers" in refused.stderr
    assert gridctl.ok("deploy", "local", "--name", "alpha", "--port", str(free_port()))["state"] == "created"
    clash = gridctl("deploy", "local", "network", "--name", "alpha")
    assert clash.code != 0 and "is a node" in clash.stderr
    unknown = gridctl("deploy", "local", "worker")
    assert unknown.code == 2
