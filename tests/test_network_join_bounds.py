"""The Network's public join route, bounded (issue 14 hardening): per client address (its pending requests and an
hourly rate; an IPv6 client's /64 as one), Network-wide, invitations never counted, the address taken through the
same trusted-proxy rule as the Node's; pending requests expire; and the Network's CORS setting. In process on a
real SQLite database, then on a live Network (and a live Node) served by uvicorn."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from grid_runtime.core.database import create_database_engine, utcnow
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.web import address_key
from grid_runtime.network import associations
from grid_runtime.network.app import API_PREFIX, create_app
from grid_runtime.network.models import Association, AuditEvent
from tests.live import LiveNode, start_live_node
from tests.networks import LiveNetwork, NetworkFactory, start_live_network

API = API_PREFIX
ATTACKER, OTHER = "203.0.113.7", "198.51.100.2"
ALLOWED_ORIGIN = "https://admin.example.org"


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {"node_name": name, "node_url": f"https://{name}.example.com",
            "node_credential": "gnodepeer_" + "x" * 40 + name, **extra}


def join(client: TestClient | httpx.Client, name: str, address: str | None = None, **extra: Any) -> Any:
    """The answer (httpx's or the TestClient's response)."""
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(f"{API}/associations", json=body(name, **extra), headers=headers)


def settings_for(tmp_path: Path, **fields: Any) -> NetworkSettings:
    return NetworkSettings(state_dir=tmp_path / "network", database_url=f"sqlite:///{tmp_path / 'network.db'}",
                           **fields)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[TestClient, NetworkFactory]]:
    """A Network behind a trusted proxy (the test client), so X-Forwarded-For names the caller."""
    settings = settings_for(tmp_path, trusted_proxies=["testclient"], join_max_pending_per_address=2,
                            join_max_per_hour=4)
    with TestClient(create_app(settings)) as client:
        yield client, NetworkFactory(client)


def refused_for(response: Any, quota: str) -> int:
    """Assert a 429 for ``quota`` with a Retry-After; the wait in seconds."""
    assert response.status_code == 429, response.text
    answer = response.json()
    assert answer["code"] == "rate_limited" and answer["details"]["quota"] == quota, answer
    wait = int(response.headers["Retry-After"])
    assert wait == answer["details"]["retry_after"] and 1 <= wait <= 3600
    return wait


def decide(client: TestClient, factory: NetworkFactory, association_id: int, verdict: str) -> Any:
    admin = factory.user("Administrator")
    return client.post(f"{API}/associations/{association_id}/{verdict}", json={}, headers=admin.headers)


class TestTheAddressKey:
    @pytest.mark.parametrize(("address", "key"), [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ])
    def test_an_ipv6_client_counts_as_its_64_and_anything_else_as_itself(self, address: str, key: str) -> None:
        assert address_key(address) == key


class TestPendingPerAddress:
    def test_one_address_may_keep_only_so_many_requests_waiting_and_others_are_not_locked_out(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        first = join(client, "a1", ATTACKER)
        assert first.status_code == 201 and join(client, "a2", ATTACKER).status_code == 201
        before = factory.snapshot()
        third = join(client, "a3", ATTACKER)
        refused_for(third, "join_max_pending_per_address")
        assert "waiting for a decision" in third.json()["message"]
        assert factory.snapshot() == before  # refused: nothing stored
        assert join(client, "b1", OTHER).status_code == 201  # another address is not locked out
        # A decision frees a place.
        assert decide(client, factory, first.json()["association_id"], "deny").status_code == 200
        assert join(client, "a3", ATTACKER).status_code == 201

    def test_a_valid_invitation_is_not_counted_against_the_address(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        assert join(client, "a1", ATTACKER).status_code == 201 and join(client, "a2", ATTACKER).status_code == 201
        refused_for(join(client, "a3", ATTACKER), "join_max_pending_per_address")
        admin = factory.user("Administrator")
        code = client.post(f"{API}/invitations", json={}, headers=admin.headers).json()["code"]
        invited = join(client, "a3", ATTACKER, invitation=code)
        assert invited.status_code == 201 and invited.json()["state"] == "approved"
        # A used invitation is refused as before (403), never counted either.
        assert join(client, "a4", ATTACKER, invitation=code).status_code == 403
        listed = {a["node_name"]: a for a in client.get(f"{API}/associations", headers=admin.headers).json()}
        assert listed["a3"]["requester_address"] is None and listed["a1"]["requester_address"] == ATTACKER

    def test_every_address_of_one_ipv6_64_counts_as_one_client(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, _ = proxied
        assert join(client, "v1", "2001:db8:1:2::1").status_code == 201
        assert join(client, "v2", "2001:db8:1:2::2").status_code == 201
        refused_for(join(client, "v3", "2001:db8:1:2:abcd::3"), "join_max_pending_per_address")
        assert join(client, "v3", "2001:db8:1:3::1").status_code == 201  # the next /64 is someone else

    def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(self, tmp_path: Path) -> None:
        with TestClient(create_app(settings_for(tmp_path, join_max_pending_per_address=2))) as client:
            assert join(client, "s1", ATTACKER).status_code == 201
            assert join(client, "s2", OTHER).status_code == 201
            # Each "address" the header claims is the same client: the peer.
            refused_for(join(client, "s3", "192.0.2.99"), "join_max_pending_per_address")
            with client.app.state.database.sessions.begin() as session:  # type: ignore[attr-defined]
                assert set(session.scalars(select(Association.requester_address))) == {"testclient"}


class TestHourlyRate:
    def test_one_address_may_make_only_so_many_requests_an_hour_decided_or_not(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        for n in range(4):
            made = join(client, f"r{n}", ATTACKER)
            assert made.status_code == 201, made.text
            assert decide(client, factory, made.json()["association_id"], "deny").status_code == 200
        wait = refused_for(join(client, "r4", ATTACKER), "join_max_per_hour")
        assert wait > 3500  # the oldest of the hour leaves the window in about an hour
        assert join(client, "o1", OTHER).status_code == 201
        # An hour later (the oldest request moved back), one more is allowed, and only one.
        with factory.sessions.begin() as session:
            oldest = session.scalar(select(Association).where(Association.node_name == "r0"))
            assert oldest is not None
            oldest.requested_at = utcnow() - timedelta(minutes=61)
        assert join(client, "r4", ATTACKER).status_code == 201
        refused_for(join(client, "r5", ATTACKER), "join_max_per_hour")


class TestTheNetworkWideCap:
    def test_past_the_cap_every_address_waits(self, proxied: tuple[TestClient, NetworkFactory],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        client, factory = proxied
        monkeypatch.setattr(associations, "MAX_PENDING", 3)
        for n, address in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
            assert join(client, f"c{n}", address).status_code == 201
        refused_for(join(client, "c3", "192.0.2.4"), "pending")
        admin = factory.user("Administrator")
        code = client.post(f"{API}/invitations", json={}, headers=admin.headers).json()["code"]
        assert join(client, "c3", "192.0.2.4", invitation=code).status_code == 201  # an invitation still works


def backdate(sessions: Any, name: str, days: float) -> None:
    with sessions.begin() as session:
        session.execute(update(Association).where(Association.node_name == name)
                        .values(requested_at=utcnow() - timedelta(days=days)))


class TestExpiry:
    def test_a_request_pending_past_its_time_is_shown_expired_kept_and_audited(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        joined = join(client, "old", ATTACKER).json()
        admin = factory.user("Administrator")
        pending = client.get(f"{API}/associations", headers=admin.headers).json()[0]
        assert pending["state"] == "pending" and pending["expires_at"] is not None
        backdate(factory.sessions, "old", 15)
        listed = client.get(f"{API}/associations", params={"state": "expired"}, headers=admin.headers).json()
        assert [(a["node_name"], a["state"], a["expires_at"]) for a in listed] == [("old", "expired", None)]
        assert "no decision within 14 days" in listed[0]["note"]
        assert client.get(f"{API}/associations", params={"state": "pending"}, headers=admin.headers).json() == []
        with factory.sessions.begin() as session:
            row = session.get(Association, joined["association_id"])
            assert row is not None and row.node_credential is None  # forgotten, as on a denial
            events = session.scalars(select(AuditEvent).where(AuditEvent.action == "association.expired")).all()
            assert [(e.target_id, e.actor_id) for e in events] == [(joined["association_id"], None)]
        node = {"Authorization": f"Bearer {joined['push_credential']}"}
        assert client.get(f"{API}/peer/association", headers=node).json()["state"] == "expired"
        late = client.post(f"{API}/associations/{joined['association_id']}/approve", json={}, headers=admin.headers)
        assert late.status_code == 409 and "expired" in late.json()["message"]
        assert join(client, "old", ATTACKER).status_code == 201  # the same Node may ask again

    def test_expiry_frees_the_bounds_without_anyone_looking(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        assert join(client, "e1", ATTACKER).status_code == 201 and join(client, "e2", ATTACKER).status_code == 201
        refused = join(client, "e3", ATTACKER)
        refused_for(refused, "join_max_pending_per_address")
        backdate(factory.sessions, "e1", 15)
        assert join(client, "e3", ATTACKER).status_code == 201  # the join itself expired e1 first
        with factory.sessions.begin() as session:
            states = dict(session.execute(select(Association.node_name, Association.state)).tuples().all())
        assert states == {"e1": "expired", "e2": "pending", "e3": "pending"}

    def test_a_request_past_its_time_cannot_be_decided_even_unseen(
        self, proxied: tuple[TestClient, NetworkFactory]
    ) -> None:
        client, factory = proxied
        joined = join(client, "unseen", ATTACKER).json()
        backdate(factory.sessions, "unseen", 15)
        for verdict in ("approve", "deny"):  # nobody listed it since: deciding expires it first
            late = decide(client, factory, joined["association_id"], verdict)
            assert late.status_code == 409 and "is expired, not pending" in late.json()["message"], late.text
        with factory.sessions.begin() as session:
            row = session.get(Association, joined["association_id"])
            assert row is not None and (row.state, row.decided_by) == ("expired", None)

    def test_a_node_asking_its_state_learns_it_expired(self, proxied: tuple[TestClient, NetworkFactory]) -> None:
        client, factory = proxied
        joined = join(client, "asking", ATTACKER).json()
        node = {"Authorization": f"Bearer {joined['push_credential']}"}
        assert client.get(f"{API}/peer/association", headers=node).json()["state"] == "pending"
        backdate(factory.sessions, "asking", 14.01)
        assert client.get(f"{API}/peer/association", headers=node).json()["state"] == "expired"
        # It may still leave (its credential works for its own state and for leaving, as after a denial).
        assert client.delete(f"{API}/peer/association", headers=node).json()["state"] == "ended"


class TestCors:
    def preflight(self, client: TestClient, origin: str) -> Any:
        return client.options(f"{API}/search", headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                                         "Access-Control-Request-Headers": "authorization"})

    def test_only_listed_origins_may_call_from_a_browser(self, tmp_path: Path) -> None:
        with TestClient(create_app(settings_for(tmp_path, cors_origins=[ALLOWED_ORIGIN]))) as client:
            allowed = self.preflight(client, ALLOWED_ORIGIN)
            assert allowed.status_code == 200
            assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
            refused = self.preflight(client, "https://evil.example.net")
            assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
            simple = client.get(f"{API}/health", headers={"Origin": ALLOWED_ORIGIN})
            assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

    def test_by_default_no_origin_is_allowed(self, tmp_path: Path) -> None:
        with TestClient(create_app(settings_for(tmp_path))) as client:
            answer = self.preflight(client, ALLOWED_ORIGIN)
            assert "access-control-allow-origin" not in answer.headers
            assert answer.status_code in (400, 405)


# --- on a live Network (uvicorn in a subprocess), and a live Node ------------------------------------------------

LIVE_ENV = {"GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true",
            "GRID_NETWORK_TRUSTED_PROXIES": '["127.0.0.1"]', "GRID_NETWORK_JOIN_MAX_PENDING_PER_ADDRESS": "2",
            "GRID_NETWORK_JOIN_MAX_PER_HOUR": "3", "GRID_NETWORK_CORS_ORIGINS": f'["{ALLOWED_ORIGIN}"]'}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    network = start_live_network(tmp_path_factory.mktemp("bounded-network"), LIVE_ENV)
    try:
        yield network
    finally:
        network.stop()


def live_client(network: LiveNetwork) -> httpx.Client:
    return httpx.Client(base_url=network.url, timeout=30)


class TestOnALiveNetwork:
    def test_joins_are_bounded_per_address_behind_the_trusted_proxy(self, live: LiveNetwork) -> None:
        with live_client(live) as client:
            assert join(client, "l1", "192.0.2.10").status_code == 201
            assert join(client, "l2", "192.0.2.10").status_code == 201
            wait = refused_for(join(client, "l3", "192.0.2.10"), "join_max_pending_per_address")
            assert wait <= 3600
            assert join(client, "l3", "192.0.2.11").status_code == 201  # another client
            code = client.post(f"{API}/invitations", json={}, headers=live.headers).json()["code"]
            assert join(client, "l4", "192.0.2.10", invitation=code).json()["state"] == "approved"
            listed = {a["node_name"]: a for a in client.get(f"{API}/associations", headers=live.headers).json()}
            assert (listed["l1"]["requester_address"], listed["l3"]["requester_address"]) == ("192.0.2.10",
                                                                                             "192.0.2.11")
            events = client.get(f"{API}/audit", headers=live.headers).json()
            assert {e["client_address"] for e in events if e["action"] == "association.requested"} == {
                "192.0.2.10", "192.0.2.11"}

    def test_the_hourly_rate_on_the_live_network(self, live: LiveNetwork) -> None:
        with live_client(live) as client:
            for n in range(3):
                made = join(client, f"h{n}", "192.0.2.20")
                assert made.status_code == 201, made.text
                decided = client.post(f"{API}/associations/{made.json()['association_id']}/deny", json={},
                                      headers=live.headers)
                assert decided.status_code == 200
            assert refused_for(join(client, "h3", "192.0.2.20"), "join_max_per_hour") > 3500

    def test_cors_preflights_on_the_live_network(self, live: LiveNetwork) -> None:
        with live_client(live) as client:
            ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
            allowed = client.options(f"{API}/auth/login", headers={"Origin": ALLOWED_ORIGIN, **ask})
            assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            refused = client.options(f"{API}/auth/login", headers={"Origin": "https://evil.example.net", **ask})
            assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
            # A refusal reaches the allowed origin whole, its Retry-After readable by the page's script.
            for n in range(2):
                assert join(client, f"x{n}", "192.0.2.30").status_code == 201
            cross = client.post(f"{API}/associations", json=body("x2"),
                                headers={"Origin": ALLOWED_ORIGIN, "X-Forwarded-For": "192.0.2.30"})
            refused_for(cross, "join_max_pending_per_address")
            assert cross.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
            assert "retry-after" in cross.headers["access-control-expose-headers"].lower()

    def test_a_live_node_learns_its_join_request_expired(self, live: LiveNetwork,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
        node: LiveNode = start_live_node(tmp_path_factory.mktemp("expiring-node"), {
            "GRID_NODE_NETWORK_ALLOW_INSECURE": "true", "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true",
            "GRID_NODE_NETWORK_SYNC_SECONDS": "600", "GRID_NODE_RAY_ENABLED": "false", "GRID_NODE_NAME": "latenode"})
        try:
            owner = {"Authorization": f"Bearer {node.owner_token}"}
            joined = httpx.post(f"{node.api}/network/associations", json={"network_url": live.url,
                                                                          "node_url": node.url},
                                headers=owner, timeout=60)
            assert joined.status_code == 201, joined.text
            assert joined.json()["state"] == "pending"
            # Fifteen days pass on the Network (its database, as a clock would).
            with sqlite3.connect(live.state_dir / "network.db") as db:
                db.execute("UPDATE associations SET requested_at = ? WHERE node_name = 'latenode'",
                           ((utcnow() - timedelta(days=15)).strftime("%Y-%m-%d %H:%M:%S.%f"),))
            synced = httpx.post(f"{node.api}/network/associations/{joined.json()['id']}/sync", headers=owner,
                                timeout=60)
            assert synced.status_code == 200, synced.text
            assert synced.json()["association"]["state"] == "expired"
            listed = httpx.get(f"{live.api}/associations", params={"state": "expired"}, headers=live.headers,
                               timeout=30).json()
            assert [a["node_name"] for a in listed] == ["latenode"]
            # The Node may ask again: an expired association is not live.
            again = httpx.post(f"{node.api}/network/associations", json={"network_url": live.url,
                                                                         "node_url": node.url},
                               headers=owner, timeout=60)
            assert again.status_code == 201 and again.json()["state"] == "pending", again.text
        finally:
            node.stop()


class TestOnEveryDatabase:
    def test_parallel_joins_from_one_address_never_pass_the_bound_and_expiry_frees_it(
        self, tmp_path: Path, database_url: str
    ) -> None:
        """On SQLite and PostgreSQL, a live Network: eight joins at once from one address, two places; then the
        oldest expires and one place frees."""
        network = start_live_network(tmp_path / "network", {**LIVE_ENV, "GRID_NETWORK_DATABASE_URL": database_url,
                                                             "GRID_NETWORK_JOIN_MAX_PER_HOUR": "50"})
        try:
            def one(n: int) -> int:
                answer = httpx.post(f"{network.api}/associations", json=body(f"p{n}"),
                                    headers={"X-Forwarded-For": "192.0.2.40"}, timeout=60)
                return answer.status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                codes = sorted(pool.map(one, range(8)))
            assert codes == [201, 201] + [429] * 6, codes
            engine = create_database_engine(database_url)
            try:
                with engine.begin() as conn:
                    oldest = conn.scalar(select(Association.id).where(Association.state == "pending")
                                         .order_by(Association.id).limit(1))
                    conn.execute(update(Association).where(Association.id == oldest)
                                 .values(requested_at=utcnow() - timedelta(days=15)))
            finally:
                engine.dispose()
            assert one(8) == 201 and one(9) == 429
            listed = httpx.get(f"{network.api}/associations", headers=network.headers, timeout=30).json()
            assert sorted(a["state"] for a in listed) == ["expired", "pending", "pending"]
        finally:
            network.stop()
