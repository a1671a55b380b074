"""Issue 14 end to end on this machine: two real Nodes and one real Network, each a uvicorn server in a
subprocess. Plain http on loopback is allowed explicitly on both sides (GRID_NODE_NETWORK_ALLOW_INSECURE and
_PRIVATE; GRID_NETWORK_ALLOW_INSECURE_NODES and _PRIVATE_NODES): by default each refuses it."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import gridctl
from gridctl.sdk.errors import GridctlError
from tests.live import LiveNode, start_live_node
from tests.networks import LiveNetwork, start_live_network, wait_for

NODE_ENV = {"GRID_NODE_NETWORK_ALLOW_INSECURE": "true", "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true",
            "GRID_NODE_NETWORK_SYNC_SECONDS": "600"}
STALE_AFTER = 4.0


def upload(node: LiveNode, name: str, *, tags: list[str], visibility: str, description: str = "") -> int:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12, dtype=np.float32).reshape(3, 4))
    response = httpx.post(f"{node.api}/tensors", params={"name": name, "format": "npy", "tag": tags,
                                                         "visibility": visibility, "description": description},
                          content=buffer.getvalue(), headers={"Authorization": f"Bearer {node.owner_token}"},
                          timeout=60)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNetwork, LiveNode, LiveNode]]:
    network = start_live_network(tmp_path_factory.mktemp("network"), {
        "GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true",
        "GRID_NETWORK_STALE_AFTER_SECONDS": str(STALE_AFTER)})
    nodes: list[LiveNode] = []
    try:
        for name in ("alpha", "beta"):
            nodes.append(start_live_node(tmp_path_factory.mktemp(name), {**NODE_ENV, "GRID_NODE_NAME": name}))
        yield network, nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
        network.stop()


def test_two_nodes_associate_and_are_searched_in_one_place(
    deployment: tuple[LiveNetwork, LiveNode, LiveNode], tmp_path: Path
) -> None:
    network, alpha, beta = deployment
    admin = gridctl.connect_network(network.url, token=network.owner_token)
    alpha_sdk = gridctl.connect(alpha.url, token=alpha.owner_token)
    beta_sdk = gridctl.connect(beta.url, token=beta.owner_token)

    # Before the association: a Network with no valid association reads no statistics.
    assert httpx.get(f"{alpha.api}/node/statistics",
                     headers={"Authorization": "Bearer gnodepeer_" + "n" * 43}).status_code == 401

    private_id = upload(alpha, "mnist-train", tags=["mnist", "vision"], visibility="private",
                        description="handwritten digits, training split")
    # alpha joins with an invitation (approved at once); beta asks and an administrator approves.
    code = admin.invite("for alpha")["code"]
    joined_alpha = alpha_sdk.networks.join(network.url, invitation=code, node_url=alpha.url)
    assert joined_alpha["state"] == "approved" and joined_alpha["network_name"] == "grid-network"
    joined_beta = beta_sdk.networks.join(network.url, node_url=beta.url)
    assert joined_beta["state"] == "pending"
    pending = admin.associations.list("pending")
    assert [a["node_name"] for a in pending] == ["beta"]
    admin.associations.approve(pending[0]["id"], "known partner")
    synced = beta_sdk.networks.sync(joined_beta["id"])
    assert synced["association"]["state"] == "approved"

    # A change on a Node reaches the Network by itself, off the request path.
    public_id = upload(beta, "mnist-test", tags=["mnist"], visibility="public")
    hits = wait_for(lambda: len(admin.search("mnist")) == 2 and admin.search("mnist"), "both Nodes' tensors")
    assert {(h.node, h.id, h.node_url) for h in hits} == {("alpha", private_id, alpha.url),
                                                          ("beta", public_id, beta.url)}
    assert not any(h.stale for h in hits)
    assert [h.node for h in admin.search(tags=["vision"])] == ["alpha"]
    # A deletion too.
    extra = upload(beta, "mnist-extra", tags=["mnist"], visibility="public")
    wait_for(lambda: [h.id for h in admin.search("mnist-extra")] == [extra], "the new tensor")
    assert httpx.delete(f"{beta.api}/tensors/{extra}", headers={"Authorization": f"Bearer {beta.owner_token}"},
                        timeout=60).status_code == 204
    wait_for(lambda: admin.search("extra").total == 0, "the deletion")

    # The private tensor's metadata is found; its values are never served by the Network.
    (private,) = [h for h in hits if h.node == "alpha"]
    assert (private.visibility, private.shape, private.dtype) == ("private", [3, 4], "float32")
    raw = httpx.get(f"{network.api}/search", params={"text": "mnist-train"}, headers=network.headers).json()
    assert set(raw["items"][0]) == {"node", "node_url", "kind", "id", "name", "description", "tags", "shape",
                                    "dtype", "visibility", "created_at", "last_seen", "stale"}
    for path in (f"/tensors/{private_id}", f"/tensors/{private_id}/download", "/tensors"):
        assert httpx.get(network.api + path, headers=network.headers).status_code == 404
    # The hit opens the Node that holds it; there, the Node's rules apply to the Node's own users.
    scientist = alpha_sdk.users.create("scientist@example.com", password="a long password 1")
    assert scientist["role"]["name"] == "Data Scientist"
    with private.open(email="scientist@example.com", password="a long password 1") as opened:
        pointer = opened.tensors[private.id]
        assert pointer.name == "mnist-train" and pointer.level == "search"
        with pytest.raises(GridctlError) as refused:
            pointer.download(tmp_path / "x.safetensors")
        assert refused.value.status == 403

    # Statistics: the Network's administrators see them per Node; its members do not.
    statistics = admin.node_statistics(pending[0]["id"])["statistics"]
    assert (statistics["node"], statistics["tensors"]) == ("beta", 1)
    member = httpx.post(f"{network.api}/users", json={"email": "member@example.com", "password": "a long password 2"},
                        headers=network.headers)
    assert member.status_code == 201
    with gridctl.connect_network(network.url, email="member@example.com", password="a long password 2") as plain:
        assert len(plain.search("mnist")) == 2  # every member searches
        with pytest.raises(GridctlError) as forbidden:
            plain.node_statistics(pending[0]["id"])
        assert forbidden.value.status == 403

    # Ending alpha's association (from alpha's side) removes its entries; its credential stops working on alpha.
    left = alpha_sdk.networks.leave(joined_alpha["id"])
    assert left["state"] == "ended"
    assert [h.node for h in admin.search("mnist")] == ["beta"]

    # A Node that is down still has its last entries found, marked stale.
    beta.stop()
    time.sleep(STALE_AFTER + 0.5)
    stale = admin.search("mnist")
    assert [(h.node, h.id, h.stale) for h in stale] == [("beta", public_id, True)]
    assert [(n["name"], n["stale"]) for n in admin.nodes()] == [("beta", True)]
