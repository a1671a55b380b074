"""Issue 14, private certificates: a Node and a Network each served over https with a certificate of its own
private CA (as a cloud deployment without a domain is, by Caddy's internal CA, for an IP address). Real uvicorn
servers with TLS in subprocesses; loopback allowed explicitly (GRID_NODE_NETWORK_ALLOW_PRIVATE,
GRID_NETWORK_ALLOW_PRIVATE_NODES), http never."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

import gridctl
from grid_runtime.core.tls import MAX_CERTIFICATES, pinned_ssl_context
from tests.clitools import Gridctl
from tests.live import LiveNode
from tests.networks import wait_for
from tests.tls import CA, make_ca, start_tls

NODE_NAME = "alpha"


@dataclass
class Pair:
    network: LiveNode
    node: LiveNode
    network_ca: CA
    node_ca: CA
    other_ca: CA
    files: Path

    def node_call(self, method: str, path: str, **options: Any) -> httpx.Response:
        return httpx.request(method, self.node.api + path, headers={"Authorization": f"Bearer {self.node.owner_token}"},
                             verify=self.node_ca.context(), timeout=60, **options)

    def network_call(self, method: str, path: str, **options: Any) -> httpx.Response:
        return httpx.request(method, self.network.api + path,
                             headers={"Authorization": f"Bearer {self.network.owner_token}"},
                             verify=self.network_ca.context(), timeout=60, **options)

    def invitation(self) -> str:
        made = self.network_call("POST", "/invitations", json={"note": "tls test"})
        assert made.status_code == 201, made.text
        return str(made.json()["code"])

    def join(self, **body: Any) -> httpx.Response:
        return self.node_call("POST", "/network/associations",
                              json={"network_url": self.network.url, "node_url": self.node.url, **body})

    def node_associations(self) -> list[dict[str, Any]]:
        return list(self.node_call("GET", "/network/associations").json())

    def network_associations(self) -> list[dict[str, Any]]:
        return list(self.network_call("GET", "/associations").json())

    def file(self, name: str, text: str) -> Path:
        path = self.files / name
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    network_ca, node_ca, other_ca = make_ca("Network test CA"), make_ca("Node test CA"), make_ca("Another CA")
    network = start_tls("network", tmp_path_factory.mktemp("network"), network_ca,
                        {"GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"})
    try:
        node = start_tls("node", tmp_path_factory.mktemp("node"), node_ca, {
            "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true", "GRID_NODE_NETWORK_SYNC_SECONDS": "600",
            "GRID_NODE_NAME": NODE_NAME})
    except BaseException:
        network.stop()
        raise
    try:
        yield Pair(network, node, network_ca, node_ca, other_ca, tmp_path_factory.mktemp("files"))
    finally:
        node.stop()
        network.stop()


@pytest.fixture(autouse=True)
def ended_afterwards(pair: Pair) -> Iterator[None]:
    """Each test starts with no live association on either side."""
    yield
    for association in pair.node_associations():
        if association["state"] != "ended":
            assert pair.node_call("DELETE", f"/network/associations/{association['id']}").status_code == 200
    for association in pair.network_associations():
        if association["state"] in ("pending", "approved"):
            pair.network_call("DELETE", f"/associations/{association['id']}")


def upload(pair: Pair, name: str) -> int:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    answer = pair.node_call("POST", "/tensors", params={"name": name, "format": "npy", "tag": ["tls"],
                                                        "visibility": "private"}, content=buffer.getvalue())
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


class TestTheNodeVerifiesTheNetwork:
    def test_without_the_root_the_join_is_refused_as_untrusted_and_nothing_is_stored(self, pair: Pair) -> None:
        before_node, before_network = pair.node_associations(), pair.network_associations()
        refused = pair.join(invitation=pair.invitation())
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["code"] == "untrusted_certificate"
        assert "the Network's TLS certificate is not trusted" in body["message"]
        assert "public CAs (no network_ca_pem was given)" in body["message"]
        assert body["details"] == {"field": "network_ca_pem"}
        assert pair.node_associations() == before_node
        assert pair.network_associations() == before_network  # the handshake failed: nothing reached it

    def test_roots_that_are_not_the_network_s_are_refused_at_call_time(self, pair: Pair) -> None:
        before_node, before_network = pair.node_associations(), pair.network_associations()
        for roots in (pair.other_ca.pem, pair.node_ca.pem, pair.other_ca.pem + pair.node_ca.pem):
            refused = pair.join(invitation=pair.invitation(), network_ca_pem=roots)
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "untrusted_certificate"
            assert "verified against the pinned root certificate(s)" in refused.json()["message"]
        assert pair.node_associations() == before_node
        assert pair.network_associations() == before_network

    def test_a_pinned_context_holds_exactly_the_given_roots_and_no_public_ca(self, pair: Pair) -> None:
        context = pinned_ssl_context(pair.network_ca.pem)
        assert context.cert_store_stats()["x509_ca"] == 1
        (only,) = context.get_ca_certs()
        assert only["subject"] == ((("commonName", "Network test CA"),),)
        assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"

    def test_with_the_root_the_node_joins_pushes_syncs_and_leaves_over_tls(self, pair: Pair) -> None:
        node = gridctl.connect(pair.node.url, token=pair.node.owner_token, ca_file=str(pair.file(
            "node-root.crt", pair.node_ca.pem)))
        # Text around the PEM blocks (as `openssl x509 -text` prints) is dropped; what is pinned is the certificate.
        joined = node.networks.join(pair.network.url, invitation=pair.invitation(), node_url=pair.node.url,
                                    network_ca_pem="subject=CN = Network test CA\n" + pair.network_ca.pem)
        assert joined["state"] == "approved"
        assert joined["network_ca_sha256"] == pair.network_ca.sha256 and joined["node_ca_sha256"] is None
        tensor = upload(pair, "tls-tensor")
        hits = wait_for(lambda: pair.network_call("GET", "/search", params={"text": "tls-tensor"}).json()["items"],
                        "the pushed entry")
        assert [(h["node"], h["id"]) for h in hits] == [(NODE_NAME, tensor)]
        synced = node.networks.sync(joined["id"])
        assert synced["pushed"] >= 1 and synced["association"]["last_error"] == ""
        left = node.networks.leave(joined["id"])
        assert left["state"] == "ended"
        (remote,) = [a for a in pair.network_associations() if a["id"] == joined["remote_id"]]
        assert remote["state"] == "ended"  # the DELETE reached the Network, over the pinned TLS
        assert pair.network_call("GET", "/search", params={"text": "tls-tensor"}).json()["items"] == []
        assert pair.node_call("DELETE", f"/tensors/{tensor}").status_code == 204


class TestTheNetworkVerifiesTheNode:
    def test_statistics_need_the_root_the_node_gave_and_fail_cleanly_without_it(self, pair: Pair) -> None:
        without = pair.join(invitation=pair.invitation(), network_ca_pem=pair.network_ca.pem)
        assert without.status_code == 201, without.text
        remote = without.json()["remote_id"]
        (listed,) = [a for a in pair.network_associations() if a["id"] == remote]
        assert listed["node_ca_sha256"] is None
        refused = pair.network_call("GET", f"/nodes/{remote}/statistics")
        assert refused.status_code == 503
        assert refused.json()["code"] == "unavailable"
        assert "the Node's TLS certificate is not trusted" in refused.json()["message"]
        assert "it gave no node_ca_pem at join" in refused.json()["message"]
        assert pair.node_call("DELETE", f"/network/associations/{without.json()['id']}").status_code == 200

        joined = pair.join(invitation=pair.invitation(), network_ca_pem=pair.network_ca.pem,
                           node_ca_pem=pair.node_ca.pem)
        assert joined.status_code == 201, joined.text
        assert joined.json()["node_ca_sha256"] == pair.node_ca.sha256
        remote = joined.json()["remote_id"]
        (listed,) = [a for a in pair.network_associations() if a["id"] == remote]
        assert listed["node_ca_sha256"] == pair.node_ca.sha256 and "node_ca_pem" not in listed
        read = pair.network_call("GET", f"/nodes/{remote}/statistics")
        assert read.status_code == 200, read.text
        assert read.json()["statistics"]["node"] == NODE_NAME

    def test_another_root_for_the_node_is_refused_when_statistics_are_read(self, pair: Pair) -> None:
        joined = pair.join(invitation=pair.invitation(), network_ca_pem=pair.network_ca.pem,
                           node_ca_pem=pair.other_ca.pem)
        assert joined.status_code == 201, joined.text
        refused = pair.network_call("GET", f"/nodes/{joined.json()['remote_id']}/statistics")
        assert refused.status_code == 503
        assert "verified against the root certificate(s) it gave at join" in refused.json()["message"]


def _bad_bundles(pair: Pair) -> dict[str, tuple[str, str]]:
    """Name -> (PEM text, words the refusal must hold)."""
    key = pair.other_ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    return {
        "not PEM": ("just some text", "is not PEM text"),
        "a leaf certificate": (pair.other_ca.leaf_pem(pair.files / "leaf"), "is not a CA certificate"),
        "oversized": (pair.network_ca.pem + "#" * (64 * 1024), "larger than 64 KiB"),
        "too many": (pair.network_ca.pem * (MAX_CERTIFICATES + 1), f"at most {MAX_CERTIFICATES} are accepted"),
        "a private key": (pair.network_ca.pem + key, "holds a PRIVATE KEY block"),
        "expired": (make_ca("Old CA", expired=True).pem, "expired on"),
        "broken base64": ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a valid X.509"),
    }


class TestValidation:
    @pytest.mark.parametrize("field", ["network_ca_pem", "node_ca_pem"])
    def test_the_node_refuses_what_is_not_a_bundle_of_ca_certificates(self, pair: Pair, field: str) -> None:
        before_node, before_network = pair.node_associations(), pair.network_associations()
        for name, (pem, words) in _bad_bundles(pair).items():
            refused = pair.join(**{field: pem})
            assert refused.status_code == 422, (name, refused.text)
            body = refused.json()
            assert body["code"] == "invalid_input" and body["details"] == {"field": field}, name
            assert body["message"].startswith(f"the {field} ") and words in body["message"], (name, body)
        assert pair.node_associations() == before_node
        assert pair.network_associations() == before_network

    def test_the_network_refuses_the_same_in_a_join_request(self, pair: Pair) -> None:
        before = pair.network_associations()
        for name, (pem, words) in _bad_bundles(pair).items():
            refused = httpx.post(f"{pair.network.api}/associations", verify=pair.network_ca.context(), json={
                "node_name": "beta", "node_url": "https://127.0.0.1:9", "node_credential": "gnodepeer_" + "b" * 40,
                "node_ca_pem": pem})
            assert refused.status_code == 422, (name, refused.text)
            assert refused.json()["details"] == {"field": "node_ca_pem"} and words in refused.json()["message"]
        assert pair.network_associations() == before


class TestTheCommandLine:
    def _context(self, pair: Pair, home: Path, name: str) -> Gridctl:
        home.mkdir(parents=True, exist_ok=True)
        node_root = pair.file(f"{name}-node-root.crt", pair.node_ca.pem)
        (home / "contexts.yaml").write_text(yaml.safe_dump({"current": name, "contexts": {name: {
            "url": pair.node.url, "token": pair.node.owner_token, "email": "owner@example.com",
            "deployment": "aws", "ca_file": str(node_root)}}}))
        return Gridctl(home=home)

    def test_join_with_ca_file_and_an_unreadable_file(self, pair: Pair, tmp_path: Path) -> None:
        gridctl_ = self._context(pair, tmp_path / "home", "plain")
        missing = gridctl_("network", "join", pair.network.url, "--ca-file", str(tmp_path / "missing.pem"))
        assert missing.exit_code == 2
        assert "--ca-file: cannot read" in missing.stderr and "missing.pem" in missing.stderr
        root = pair.file("network-root.crt", pair.network_ca.pem)
        joined = gridctl_.json("network", "join", pair.network.url, "--invitation", pair.invitation(), "--node-url",
                               pair.node.url, "--ca-file", str(root))
        assert joined["state"] == "approved" and joined["network_ca_sha256"] == pair.network_ca.sha256
        assert joined["node_ca_sha256"] == pair.node_ca.sha256  # the root the context pins, sent by default

    def test_a_cloud_deployment_s_network_is_joined_with_no_flags(self, pair: Pair, tmp_path: Path) -> None:
        home = tmp_path / "home"
        gridctl_ = self._context(pair, home, "demo")
        state_dir = home / "deployments" / "demo"
        state_dir.mkdir(parents=True)
        (state_dir / "deployment.json").write_text(json.dumps({
            "name": "demo", "provider": "aws", "url": pair.node.url, "created_at": "2026-12-01T00:00:00+00:00",
            "owner_email": "owner@example.com", "settings": {"outputs": {"network_url": pair.network.url}}}))
        # Without the Network's root file the default does not apply: the public CAs refuse it.
        refused = gridctl_("network", "join", pair.network.url, "--invitation", pair.invitation(), "--node-url",
                           pair.node.url)
        assert refused.exit_code == 7 and "not trusted" in refused.stderr
        (state_dir / "network-tls-root.crt").write_text(pair.network_ca.pem)
        result = gridctl_("network", "join", pair.network.url, "--invitation", pair.invitation(), "--node-url",
                          pair.node.url, "--output", "json")
        assert result.exit_code == 0, result.stderr
        assert "pinning the Network's root certificate of deployment 'demo'" in result.stderr
        joined = json.loads(result.stdout)
        assert joined["state"] == "approved"
        assert (joined["network_ca_sha256"], joined["node_ca_sha256"]) == (pair.network_ca.sha256,
                                                                          pair.node_ca.sha256)
        read = pair.network_call("GET", f"/nodes/{joined['remote_id']}/statistics")
        assert read.status_code == 200 and read.json()["statistics"]["node"] == NODE_NAME
