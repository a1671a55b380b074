"""``gridctl network`` against a real Node and a real Network (uvicorn subprocesses): join with an invitation,
search, the Node list, statistics, deny a request, leave; and what happens without a Network selected."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from gridctl.cli import exit_codes
from tests.clitools import Gridctl
from tests.live import LiveNode, start_live_node
from tests.networks import LiveNetwork, start_live_network


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNetwork, LiveNode]]:
    network = start_live_network(tmp_path_factory.mktemp("cli-network"), {
        "GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"})
    try:
        node = start_live_node(tmp_path_factory.mktemp("cli-node"), {
            "GRID_NODE_NAME": "gamma", "GRID_NODE_NETWORK_ALLOW_INSECURE": "true",
            "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true"})
    except BaseException:
        network.stop()
        raise
    try:
        yield network, node
    finally:
        node.stop()
        network.stop()


def test_join_search_and_leave_from_the_command_line(pair: tuple[LiveNetwork, LiveNode], tmp_path: Path) -> None:
    network, node = pair
    gridctl = Gridctl(home=tmp_path, url=node.url, token=node.owner_token,
                      env={"GRIDCTL_NETWORK_URL": network.url, "GRIDCTL_NETWORK_TOKEN": network.owner_token})
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 5), dtype=np.float32))
    assert httpx.post(f"{node.api}/tensors", params={"name": "gamma-rays", "format": "npy", "tag": ["physics"]},
                      content=buffer.getvalue(), headers={"Authorization": f"Bearer {node.owner_token}"},
                      timeout=60).status_code == 201

    invited = gridctl("network", "invite", "--note", "for gamma")
    assert invited.exit_code == 0 and "invitation: gninvite_" in invited.stderr
    code = invited.stderr.split("invitation: ")[1].split()[0]
    joined = gridctl.json("network", "join", network.url, "--invitation", code, "--node-url", node.url)
    assert joined["state"] == "approved"
    synced = gridctl.json("network", "sync", str(joined["id"]))
    assert synced["pushed"] == 1

    hits = gridctl.json("network", "search", "--tag", "physics", "--text", "gamma")
    assert [(h["node"], h["name"], h["node_url"]) for h in hits] == [("gamma", "gamma-rays", node.url)]
    table = gridctl("network", "search", "gamma")
    assert table.exit_code == 0 and "gamma-rays" in table.stdout
    nodes = gridctl.json("network", "nodes")
    assert [(n["name"], n["entries"]) for n in nodes] == [("gamma", 1)]
    statistics = gridctl.json("network", "node-statistics", str(nodes[0]["association_id"]))
    assert (statistics["node"], statistics["tensors"]) == ("gamma", 1)

    # A request the Network's administrator denies.
    asked = httpx.post(f"{network.api}/associations", json={"node_name": "stranger", "node_url": "http://127.0.0.1:9",
                                                           "node_credential": "gnodepeer_" + "s" * 43})
    pending = gridctl.json("network", "associations", "list", "--state", "pending")
    assert [a["id"] for a in pending] == [asked.json()["association_id"]]
    denied = gridctl.json("network", "associations", "deny", str(pending[0]["id"]), "--note", "who are you?")
    assert denied["state"] == "denied"

    left = gridctl.json("network", "leave", str(joined["id"]), "--yes")
    assert left["state"] == "ended"
    assert gridctl.json("network", "search", "gamma") == []
    assert [a["state"] for a in gridctl.json("network", "joined")] == ["ended"]

    # Joined again; this time the Network's administrator ends it, and the Node learns so at its next round.
    code = gridctl("network", "invite").stderr.split("invitation: ")[1].split()[0]
    again = gridctl.json("network", "join", network.url, "--invitation", code, "--node-url", node.url)
    assert again["state"] == "approved" and again["id"] != joined["id"]
    gridctl.json("network", "sync", str(again["id"]))
    assert [h["name"] for h in gridctl.json("network", "search", "gamma")] == ["gamma-rays"]
    current = next(a for a in gridctl.json("network", "associations", "list") if a["state"] == "approved")
    assert gridctl.json("network", "associations", "end", str(current["id"]), "--yes")["state"] == "ended"
    assert gridctl.json("network", "search", "gamma") == []
    assert gridctl.json("network", "sync", str(again["id"]))["association"]["state"] == "ended"
    statistics = httpx.get(f"{network.api}/nodes/{current['id']}/statistics", headers=network.headers)
    assert statistics.status_code == 404


def test_without_a_network_selected_the_command_says_how_to_select_one(tmp_path: Path) -> None:
    result = Gridctl(home=tmp_path)("network", "search", "anything")
    assert result.exit_code == exit_codes.AUTH
    assert "GRIDCTL_NETWORK_URL" in result.stderr
