"""The Node's side of Networks (issue 14): its statistics (view_statistics, or an associated Network's credential,
nobody else), joining (manage_infrastructure, checked URLs), and what it publishes (metadata a user without grants
sees, never values or what is computed from them). In process; tests/test_network_e2e.py runs the whole thing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grid_runtime.core.capabilities import ALL, Capability
from grid_runtime.core.security import hash_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from grid_runtime.node.network import service
from grid_runtime.node.network.models import NetworkAssociation
from tests.factories import Factory

API = "/api/v1"
CREDENTIAL = "gnodepeer_" + "s" * 43


def _association(factory: Factory, state: str, credential: str = CREDENTIAL) -> int:
    with factory.sessions.begin() as session:
        row = NetworkAssociation(network_url="https://network.example.com", network_name="net", remote_id=1,
                                 state=state, push_credential="gnpush_x", accept_hash=hash_token(credential))
        session.add(row)
        session.flush()
        return row.id


class TestStatistics:
    def test_a_holder_of_view_statistics_reads_the_counts(self, client: TestClient, factory: Factory) -> None:
        reader = factory.user(capabilities={Capability.view_statistics})
        factory.tensor(), factory.tensor()
        factory.dataset(tensors=[factory.tensor()])
        answer = client.get(f"{API}/node/statistics", headers=reader.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["tensors"], body["datasets"], body["users"]) == (3, 1, 1)
        assert body["requests"] == {} and body["privacy_events"] == 0 and body["epsilon_spent_simple_sum"] == 0.0

    def test_refused_to_users_without_view_statistics_and_to_anonymous(
        self, client: TestClient, factory: Factory
    ) -> None:
        lacking = factory.user(capabilities=set(ALL - {Capability.view_statistics}))
        refused = client.get(f"{API}/node/statistics", headers=lacking.headers)
        assert refused.status_code == 403 and refused.json()["details"]["missing"] == ["view_statistics"]
        assert client.get(f"{API}/node/statistics").status_code == 401

    def test_a_network_reads_them_only_while_its_association_is_approved(
        self, client: TestClient, factory: Factory
    ) -> None:
        headers = {"Authorization": f"Bearer {CREDENTIAL}"}
        association = _association(factory, "pending")
        assert client.get(f"{API}/node/statistics", headers=headers).status_code == 401
        with factory.sessions.begin() as session:
            row = session.get(NetworkAssociation, association)
            assert row is not None
            row.state = "approved"
        assert client.get(f"{API}/node/statistics", headers=headers).status_code == 200
        with factory.sessions.begin() as session:
            row = session.get(NetworkAssociation, association)
            assert row is not None
            row.state = "ended"
        assert client.get(f"{API}/node/statistics", headers=headers).status_code == 401

    def test_an_unassociated_network_is_refused(self, client: TestClient, factory: Factory) -> None:
        _association(factory, "approved")
        other = {"Authorization": "Bearer gnodepeer_" + "o" * 43}
        assert client.get(f"{API}/node/statistics", headers=other).status_code == 401
        # A Network's credential opens the statistics and nothing else.
        headers = {"Authorization": f"Bearer {CREDENTIAL}"}
        assert client.get(f"{API}/tensors", headers=headers).status_code == 401
        assert client.get(f"{API}/network/associations", headers=headers).status_code == 401


class TestJoining:
    def test_joining_needs_manage_infrastructure(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")  # everything but edit_roles and manage_infrastructure
        response = client.post(f"{API}/network/associations", json={"network_url": "https://network.example.com"},
                               headers=admin.headers)
        assert response.status_code == 403 and response.json()["details"]["missing"] == ["manage_infrastructure"]

    @pytest.mark.parametrize("url", ["http://network.example.com", "https://127.0.0.1", "https://192.168.1.5:8100",
                                     "https://[::1]:8100", "https://network.local", "https://intranet",
                                     "https://network.example.com/api/v1/x", "javascript:alert(1)"])
    def test_a_network_url_must_be_public_https(self, client: TestClient, factory: Factory, url: str) -> None:
        owner = factory.owner()
        before = factory.snapshot()
        response = client.post(f"{API}/network/associations", json={"network_url": url,
                                                                    "node_url": "https://node.example.com"},
                               headers=owner.headers)
        assert response.status_code == 422 and response.json()["details"]["field"] == "network_url", response.text
        assert factory.snapshot() == before

    def test_the_node_must_know_its_own_url(self, client: TestClient, factory: Factory) -> None:
        response = client.post(f"{API}/network/associations", json={"network_url": "https://network.example.com"},
                               headers=factory.owner().headers)
        assert response.status_code == 422 and response.json()["details"]["field"] == "node_url"


class TestWhatIsPublished:
    def test_metadata_only_nothing_computed_from_the_values(self, client: TestClient, factory: Factory) -> None:
        tensor = factory.tensor("secret-shape")
        factory.dataset("cohort", tensors=[tensor])
        with factory.sessions.begin() as session:
            entries = service.catalogue(session)
        published = entries[("tensor", tensor)]
        assert set(published) == {"kind", "id", "name", "description", "tags", "shape", "dtype", "visibility",
                                  "created_at"}
        assert published["name"] == "secret-shape" and published["visibility"] == "private"
        assert {"kind", "id", "name"} <= set(entries[("dataset", next(k[1] for k in entries if k[0] == "dataset"))])


class TestWhenTheNetworkIsDown:
    def test_a_sync_that_cannot_reach_the_network_says_so_and_keeps_the_association(
        self, tmp_path: Path, sqlite_url: str
    ) -> None:
        from tests.live import free_port

        settings = NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url, network_allow_insecure=True,
                                network_allow_private=True, network_timeout_seconds=2)
        with TestClient(create_app(settings)) as client:
            factory = Factory(client)
            owner = factory.owner()
            with factory.sessions.begin() as session:
                row = NetworkAssociation(network_url=f"http://127.0.0.1:{free_port()}", network_name="gone",
                                         remote_id=1, state="approved", push_credential="gnpush_x",
                                         accept_hash=hash_token(CREDENTIAL))
                session.add(row)
                session.flush()
                association = row.id
            answer = client.post(f"{API}/network/associations/{association}/sync", headers=owner.headers)
            assert answer.status_code == 503 and answer.json()["code"] == "unavailable"
            (listed,) = client.get(f"{API}/network/associations", headers=owner.headers).json()
            assert listed["state"] == "approved" and "could not be reached" in listed["last_error"]
            # Uploads and reads never wait for the Network.
            assert client.get(f"{API}/tensors", headers=owner.headers).status_code == 200
            refused = client.post(f"{API}/network/associations", headers=owner.headers,
                                  json={"network_url": listed["network_url"], "node_url": "http://127.0.0.1:1"})
            assert refused.status_code == 409  # already associated with that Network


class TestReconciliation:
    def test_changes_are_pushed_by_themselves_and_drift_is_repaired_periodically(
        self, tmp_path: Path, sqlite_url: str
    ) -> None:
        import time

        import httpx

        from tests.networks import start_live_network

        network = start_live_network(tmp_path / "network", {"GRID_NETWORK_ALLOW_INSECURE_NODES": "true",
                                                            "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"})
        try:
            settings = NodeSettings(name="delta", state_dir=tmp_path / "state", database_url=sqlite_url,
                                    network_allow_insecure=True, network_allow_private=True, network_sync_seconds=1.5)
            with TestClient(create_app(settings)) as client:
                factory = Factory(client)
                code = httpx.post(f"{network.api}/invitations", json={}, headers=network.headers).json()["code"]
                joined = client.post(f"{API}/network/associations", headers=factory.owner().headers,
                                     json={"network_url": network.url, "invitation": code,
                                           "node_url": "http://127.0.0.1:9"})
                assert joined.status_code == 201 and joined.json()["state"] == "approved"
                kept = [factory.tensor("delta-kept"), factory.tensor("delta-also")]

                def found() -> list[int]:
                    page = httpx.get(f"{network.api}/search", params={"node": "delta"}, headers=network.headers)
                    return sorted(h["id"] for h in page.json()["items"])

                def until(expected: list[int]) -> None:
                    deadline = time.monotonic() + 20
                    while found() != expected:
                        assert time.monotonic() < deadline, (found(), expected)
                        time.sleep(0.2)

                until(sorted(kept))  # written straight to the database: pushed after the commit, by itself
                with factory.sessions.begin() as session:
                    row = session.get(NetworkAssociation, joined.json()["id"])
                    assert row is not None and row.push_credential
                    credential = row.push_credential
                drift = httpx.post(f"{network.api}/peer/catalogue", headers={"Authorization": f"Bearer {credential}"},
                                   json={"node": "delta", "upserts": [{"kind": "tensor", "id": 999, "name": "ghost",
                                                                       "visibility": "public"}]})
                assert drift.status_code == 200 and found() == sorted([*kept, 999])
                until(sorted(kept))  # the next periodic reconciliation drops what the Node does not have
        finally:
            network.stop()
