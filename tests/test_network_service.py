"""The Network service (issue 14): its own app, database and migrations, setup, users and roles, association
requests, invitations, the checked catalogue push and search. In process on a real SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, update

from grid_runtime.core.capabilities import NETWORK_ALL, NetworkCapability
from grid_runtime.core.database import alembic_config, create_database_engine, utcnow
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.app import API_PREFIX, create_app, declares_caller
from grid_runtime.network.database import MIGRATIONS_DIR, upgrade_network
from grid_runtime.network.models import Association, CatalogueEntry
from grid_runtime.network.router import PUBLIC_ROUTES, router
from tests.networks import NetworkFactory

API = API_PREFIX


@pytest.fixture
def network_settings(tmp_path: Path) -> NetworkSettings:
    return NetworkSettings(state_dir=tmp_path / "network", database_url=f"sqlite:///{tmp_path / 'network.db'}",
                           login_max_failures=3, max_push_bytes=64 * 1024, max_push_entries=50,
                           max_entries_per_node=60, stale_after_seconds=60)


@pytest.fixture
def net(network_settings: NetworkSettings) -> Iterator[TestClient]:
    with TestClient(create_app(network_settings)) as client:
        yield client


@pytest.fixture
def nf(net: TestClient) -> NetworkFactory:
    return NetworkFactory(net)


def entry(object_id: int, name: str = "", **fields: Any) -> dict[str, Any]:
    return {"kind": "tensor", "id": object_id, "name": name or f"tensor {object_id}", "description": "",
            "tags": [], "shape": [3, 4], "dtype": "float32", "visibility": "private", **fields}


def approved(net: TestClient, nf: NetworkFactory, name: str) -> dict[str, str]:
    """Join as ``name``, approved by an administrator; the Node's push headers."""
    joined = nf.join(name)
    admin = nf.user("Administrator")
    decided = net.post(f"{API}/associations/{joined['association_id']}/approve", json={}, headers=admin.headers)
    assert decided.status_code == 200, decided.text
    return {"Authorization": f"Bearer {joined['push_credential']}"}


def push(net: TestClient, headers: dict[str, str], node: str, **body: Any) -> Any:
    return net.post(f"{API}/peer/catalogue", json={"node": node, **body}, headers=headers)


class TestTheAppDeclaresEveryCaller:
    def test_every_route_is_public_or_names_who_may_call_it(self) -> None:
        routes = [(m, r.path, r) for r in router.routes if isinstance(r, APIRoute)
                  for m in (r.methods or set()) - {"HEAD"}]
        assert len(routes) >= 20
        undeclared = [f"{m} {p}" for m, p, r in routes
                      if (m, p) not in PUBLIC_ROUTES and not declares_caller(r.dependant)]
        assert undeclared == []

    def test_every_protected_route_answers_401_without_a_token(self, net: TestClient) -> None:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for method in (route.methods or set()) - {"HEAD"}:
                if (method, route.path) in PUBLIC_ROUTES:
                    continue
                response = net.request(method, API + route.path.replace("{association_id}", "1")
                                       .replace("{user_id}", "1"))
                assert response.status_code == 401, (method, route.path, response.text)
                assert response.json()["code"] == "unauthorized"

    def test_it_names_itself_to_anyone_for_the_admin(self, net: TestClient,
                                                     network_settings: NetworkSettings) -> None:
        assert ("GET", "/service") in PUBLIC_ROUTES
        answer = net.get(f"{API}/service")
        assert answer.status_code == 200
        assert answer.json() == {"kind": "network", "name": network_settings.name}

    def test_the_network_and_the_node_import_nothing_from_each_other(self) -> None:
        from tests.test_layering import imports_of

        root = Path(__file__).resolve().parents[1] / "grid_runtime"
        for path in (root / "network").rglob("*.py"):
            assert not any(m.startswith("grid_runtime.node") for m in imports_of(path)), path
        for path in (root / "node").rglob("*.py"):
            assert not any(m.startswith("grid_runtime.network") for m in imports_of(path)), path


class TestItsOwnDatabase:
    def test_migrations_upgrade_check_downgrade_and_upgrade_again(self, database_url: str) -> None:
        config = alembic_config(database_url, MIGRATIONS_DIR)
        engine = create_database_engine(database_url)
        try:
            command.upgrade(config, "head")
            tables = set(inspect(engine).get_table_names())
            assert {"associations", "catalogue_entries", "users", "roles", "invitations"} <= tables
            assert "tensors" not in tables  # none of the Node's
            command.check(config)  # the models and the migrations agree
            command.downgrade(config, "base")
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
            command.upgrade(config, "head")
            command.check(config)
        finally:
            engine.dispose()

    def test_a_fresh_database_built_from_the_models_matches_the_migrations(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        engine = create_database_engine(url)
        try:
            upgrade_network(engine)  # empty: built from the models and stamped at head
            command.check(alembic_config(url, MIGRATIONS_DIR))
        finally:
            engine.dispose()


class TestSetupAndLogin:
    def test_setup_works_once_with_the_token_and_removes_its_file(
        self, net: TestClient, network_settings: NetworkSettings
    ) -> None:
        token_file = network_settings.state_dir / "setup-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        body = {"setup_token": token_file.read_text().strip(), "email": "owner@example.com",
                "password": "a long password"}
        assert net.post(f"{API}/setup", json=body).status_code == 201
        assert not token_file.exists()
        again = net.post(f"{API}/setup", json={**body, "email": "other@example.com"})
        assert again.status_code == 403
        login = net.post(f"{API}/auth/login", json={"email": "owner@example.com", "password": "a long password"})
        assert login.status_code == 200
        me = net.get(f"{API}/users/me", headers={"Authorization": f"Bearer {login.json()['token']}"}).json()
        assert me["role"] == "Owner"

    def test_failed_logins_are_limited_per_account_and_address(self, net: TestClient, nf: NetworkFactory) -> None:
        made = nf.user()
        email = net.get(f"{API}/users/me", headers=made.headers).json()["email"]
        for _ in range(3):
            assert net.post(f"{API}/auth/login", json={"email": email, "password": "wrong!"}).status_code == 401
        refused = net.post(f"{API}/auth/login", json={"email": email, "password": "correct horse battery"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


class TestApiTokens:
    def test_a_named_token_works_until_revoked_and_its_secret_is_shown_once(
        self, net: TestClient, nf: NetworkFactory
    ) -> None:
        member = nf.user()
        made = net.post(f"{API}/tokens", json={"name": "ci"}, headers=member.headers)
        assert made.status_code == 201 and made.json()["token"].startswith("gnapi_")
        ci = {"Authorization": f"Bearer {made.json()['token']}"}
        assert net.get(f"{API}/search", headers=ci).status_code == 200
        assert net.post(f"{API}/tokens", json={"name": "ci"}, headers=member.headers).status_code == 409
        listed = net.get(f"{API}/tokens", headers=member.headers).json()
        assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
        assert net.delete(f"{API}/tokens/ci", headers=member.headers).json()["revoked_at"] is not None
        assert net.get(f"{API}/search", headers=ci).status_code == 401


class TestUsersAndRoles:
    def test_managing_users_needs_manage_users(self, net: TestClient, nf: NetworkFactory) -> None:
        lacking = nf.user(capabilities=set(NETWORK_ALL - {NetworkCapability.manage_users}))
        refused = net.get(f"{API}/users", headers=lacking.headers)
        assert refused.status_code == 403 and refused.json()["details"]["missing"] == ["manage_users"]
        admin = nf.user("Administrator")
        made = net.post(f"{API}/users", json={"email": "new@example.com", "password": "a long password"},
                        headers=admin.headers)
        assert made.status_code == 201 and made.json()["role"] == "Member"

    def test_nobody_gives_a_role_holding_more_than_they_hold(self, net: TestClient, nf: NetworkFactory) -> None:
        admin = nf.user("Administrator")  # all but edit_roles
        for role in ("Owner",):
            refused = net.post(f"{API}/users", json={"email": "x@example.com", "password": "a long password",
                                                     "role": role}, headers=admin.headers)
            assert refused.status_code == 403
        assert net.patch(f"{API}/users/{admin.id}", json={"disabled": True}, headers=admin.headers).status_code == 403

    def test_custom_roles_need_edit_roles(self, net: TestClient, nf: NetworkFactory) -> None:
        body = {"name": "searchers", "capabilities": ["view_statistics"]}
        assert net.post(f"{API}/roles", json=body, headers=nf.user("Administrator").headers).status_code == 403
        owner = nf.user("Owner")
        assert net.post(f"{API}/roles", json=body, headers=owner.headers).status_code == 201


class TestAuditLog:
    def test_every_decision_is_in_the_audit_log_for_view_statistics_holders(
        self, net: TestClient, nf: NetworkFactory
    ) -> None:
        joined = nf.join("alpha")
        admin = nf.user("Administrator")
        net.post(f"{API}/associations/{joined['association_id']}/approve", json={}, headers=admin.headers)
        refused = net.get(f"{API}/audit", headers=nf.user().headers)
        assert refused.status_code == 403 and refused.json()["details"]["missing"] == ["view_statistics"]
        events = net.get(f"{API}/audit", headers=admin.headers).json()
        assert [(e["action"], e["actor_id"]) for e in events[:2]] == [("association.approved", admin.id),
                                                                     ("association.requested", None)]
        assert push_credential_absent(events, joined["push_credential"])


def push_credential_absent(events: list[dict[str, Any]], secret: str) -> bool:
    return secret not in json.dumps(events)


class TestAssociationRequests:
    def test_a_join_is_pending_until_approved_and_may_not_push_before(
        self, net: TestClient, nf: NetworkFactory
    ) -> None:
        joined = nf.join("alpha")
        assert joined["state"] == "pending" and joined["push_credential"].startswith("gnpush_")
        headers = {"Authorization": f"Bearer {joined['push_credential']}"}
        assert net.get(f"{API}/peer/association", headers=headers).json()["state"] == "pending"
        early = push(net, headers, "alpha", upserts=[entry(1)])
        assert early.status_code == 403
        member = nf.user()
        url = f"{API}/associations/{joined['association_id']}/approve"
        assert net.post(url, json={}, headers=member.headers).status_code == 403
        assert net.post(url, json={}, headers=nf.user("Administrator").headers).json()["state"] == "approved"
        assert push(net, headers, "alpha", upserts=[entry(1)]).status_code == 200

    def test_the_network_stores_only_the_hash_of_the_push_credential(self, net: TestClient, nf: NetworkFactory) -> None:
        joined = nf.join("hashed")
        with nf.sessions.begin() as session:
            stored = session.get(Association, joined["association_id"])
            assert stored is not None and joined["push_credential"] not in stored.push_hash

    def test_a_denied_join_never_pushes(self, net: TestClient, nf: NetworkFactory) -> None:
        joined = nf.join("beta")
        admin = nf.user("Administrator")
        denied = net.post(f"{API}/associations/{joined['association_id']}/deny", json={"note": "unknown to us"},
                          headers=admin.headers)
        assert denied.json()["state"] == "denied" and denied.json()["note"] == "unknown to us"
        headers = {"Authorization": f"Bearer {joined['push_credential']}"}
        assert push(net, headers, "beta", upserts=[entry(1)]).status_code == 403
        again = net.post(f"{API}/associations/{joined['association_id']}/approve", json={}, headers=admin.headers)
        assert again.status_code == 409

    def test_an_invitation_approves_the_join_at_once_and_only_once(self, net: TestClient, nf: NetworkFactory) -> None:
        admin = nf.user("Administrator")
        assert net.post(f"{API}/invitations", json={}, headers=nf.user().headers).status_code == 403
        code = net.post(f"{API}/invitations", json={"note": "for gamma"}, headers=admin.headers).json()["code"]
        assert nf.join("gamma", invitation=code)["state"] == "approved"
        reused = net.post(f"{API}/associations", json={"node_name": "delta", "node_url": "https://delta.example.com",
                                                      "node_credential": "gnodepeer_" + "y" * 40, "invitation": code})
        assert reused.status_code == 403
        listed = net.get(f"{API}/associations", headers=admin.headers).json()
        assert [(a["node_name"], a["invited"]) for a in listed] == [("gamma", True)]

    def test_a_node_already_associated_cannot_join_twice(self, net: TestClient, nf: NetworkFactory) -> None:
        nf.join("epsilon")
        again = net.post(f"{API}/associations", json={"node_name": "epsilon", "node_url": "https://other.example.com",
                                                     "node_credential": "gnodepeer_" + "z" * 40})
        assert again.status_code == 409

    @pytest.mark.parametrize("url", ["http://node.example.com", "https://127.0.0.1:8000", "https://10.1.2.3",
                                     "https://localhost", "https://node.internal", "https://node.example.com/path",
                                     "https://user:pw@node.example.com", "ftp://node.example.com"])
    def test_node_urls_must_be_public_https_unless_the_operator_allows(self, net: TestClient, url: str) -> None:
        response = net.post(f"{API}/associations", json={"node_name": "zeta", "node_url": url,
                                                        "node_credential": "gnodepeer_" + "q" * 40})
        assert response.status_code == 422 and response.json()["details"]["field"] == "node_url", response.text

    def test_the_operator_may_allow_http_and_private_node_urls(self, tmp_path: Path) -> None:
        allowing = NetworkSettings(state_dir=tmp_path / "open", database_url=f"sqlite:///{tmp_path / 'open.db'}",
                                   allow_insecure_nodes=True, allow_private_nodes=True)
        with TestClient(create_app(allowing)) as client:
            response = client.post(f"{API}/associations", json={"node_name": "eta", "node_url": "http://127.0.0.1:9",
                                                                "node_credential": "gnodepeer_" + "r" * 40})
            assert response.status_code == 201

    def test_ending_an_association_removes_the_nodes_entries_and_its_credential(
        self, net: TestClient, nf: NetworkFactory
    ) -> None:
        alpha, beta = approved(net, nf, "alpha"), approved(net, nf, "beta")
        push(net, alpha, "alpha", upserts=[entry(1, "mnist")])
        push(net, beta, "beta", upserts=[entry(1, "mnist")])
        admin = nf.user("Administrator")
        alpha_id = net.get(f"{API}/peer/association", headers=alpha).json()["association_id"]
        assert net.delete(f"{API}/associations/{alpha_id}", headers=admin.headers).json()["state"] == "ended"
        hits = net.get(f"{API}/search", params={"text": "mnist"}, headers=admin.headers).json()["items"]
        assert [h["node"] for h in hits] == ["beta"]
        assert push(net, alpha, "alpha", upserts=[entry(2)]).status_code == 401

    def test_a_node_may_end_its_own_association(self, net: TestClient, nf: NetworkFactory) -> None:
        alpha = approved(net, nf, "alpha")
        push(net, alpha, "alpha", upserts=[entry(1)])
        assert net.delete(f"{API}/peer/association", headers=alpha).json()["state"] == "ended"
        with nf.sessions.begin() as session:
            assert session.scalars(select(CatalogueEntry)).all() == []
        assert net.get(f"{API}/peer/association", headers=alpha).status_code == 401


class TestHostilePushes:
    """A malformed or hostile push is refused whole and changes nothing."""

    @pytest.fixture
    def alpha(self, net: TestClient, nf: NetworkFactory) -> dict[str, str]:
        headers = approved(net, nf, "alpha")
        assert push(net, headers, "alpha", upserts=[entry(1, "kept")]).status_code == 200
        return headers

    def test_an_oversized_push_is_refused(self, net: TestClient, nf: NetworkFactory, alpha: dict[str, str]) -> None:
        before = nf.snapshot()
        big = {"node": "alpha", "upserts": [entry(2, description="x" * 2000)] * 40}
        response = net.post(f"{API}/peer/catalogue", content=json.dumps(big), headers=alpha)
        assert response.status_code == 413 and response.json()["details"] == {"max_push_bytes": 64 * 1024}
        chunked = net.post(f"{API}/peer/catalogue", content=iter([json.dumps(big).encode()]), headers=alpha)
        assert chunked.status_code == 413
        assert nf.snapshot() == before

    @pytest.mark.parametrize("body", [
        {"node": "alpha", "upserts": [entry(2, sha256="ab" * 32)]},  # a field the schema does not have
        {"node": "alpha", "upserts": [entry(2, values=[1, 2, 3])]},
        {"node": "alpha", "upserts": [entry(2, name="n" * 129)]},
        {"node": "alpha", "upserts": [entry(2, tags=["Not A Tag!"])]},
        {"node": "alpha", "upserts": [entry(2, shape=list(range(33)))]},
        {"node": "alpha", "upserts": [entry(0)]},
        {"node": "alpha", "upserts": [entry(2, kind="model")]},
        {"node": "alpha", "upserts": [entry(2), entry(2)]},
        {"node": "alpha", "upserts": [entry(i) for i in range(2, 60)]},  # more than max_push_entries
        {"node": "alpha", "upserts": [], "extra": True},
        {"upserts": [entry(2)]},
        {"node": "alpha", "upserts": [entry(2, description="nul \u0000 here")]},
    ])
    def test_a_push_not_matching_the_schema_is_refused(
        self, net: TestClient, nf: NetworkFactory, alpha: dict[str, str], body: dict[str, Any]
    ) -> None:
        before = nf.snapshot()
        response = net.post(f"{API}/peer/catalogue", json=body, headers=alpha)
        assert response.status_code == 422 and response.json()["code"] == "invalid_input", response.text
        assert nf.snapshot() == before

    def test_malformed_json_is_refused(self, net: TestClient, nf: NetworkFactory, alpha: dict[str, str]) -> None:
        before = nf.snapshot()
        response = net.post(f"{API}/peer/catalogue", content=b'{"node": "alpha", "upserts": [', headers=alpha)
        assert response.status_code == 422
        assert nf.snapshot() == before

    def test_a_node_claiming_another_nodes_objects_is_refused(
        self, net: TestClient, nf: NetworkFactory, alpha: dict[str, str]
    ) -> None:
        beta = approved(net, nf, "beta")
        assert push(net, beta, "beta", upserts=[entry(7, "beta's own")]).status_code == 200
        before = nf.snapshot()
        claimed = push(net, alpha, "beta", upserts=[entry(7, "rewritten by alpha")])
        assert claimed.status_code == 403 and claimed.json()["code"] == "forbidden"
        assert nf.snapshot() == before
        # Deleting by id reaches only the pusher's own entries: beta's tensor 7 stays.
        assert push(net, alpha, "alpha", deletes=[{"kind": "tensor", "id": 7}]).json()["deleted"] == 0
        hits = net.get(f"{API}/search", params={"text": "beta's"}, headers=nf.user().headers).json()["items"]
        assert [(h["node"], h["name"]) for h in hits] == [("beta", "beta's own")]

    def test_a_node_may_hold_at_most_max_entries_per_node(
        self, net: TestClient, nf: NetworkFactory, alpha: dict[str, str]
    ) -> None:
        assert push(net, alpha, "alpha", upserts=[entry(i) for i in range(2, 50)]).status_code == 200
        before = nf.snapshot()
        over = push(net, alpha, "alpha", upserts=[entry(i) for i in range(50, 70)])
        assert over.status_code == 422 and "max_entries_per_node" in over.json()["details"]
        assert nf.snapshot() == before

    def test_an_unknown_credential_is_401(self, net: TestClient) -> None:
        response = push(net, {"Authorization": "Bearer gnpush_nothing"}, "alpha", upserts=[])
        assert response.status_code == 401


class TestSearch:
    def test_text_and_tags_across_nodes_each_hit_naming_its_node(self, net: TestClient, nf: NetworkFactory) -> None:
        alpha, beta = approved(net, nf, "alpha"), approved(net, nf, "beta")
        push(net, alpha, "alpha", upserts=[entry(1, "MNIST train", tags=["mnist", "vision"]),
                                           entry(2, "census", tags=["tabular"])])
        push(net, beta, "beta", upserts=[entry(5, "mnist test", tags=["mnist"]),
                                         {**entry(6, "digits"), "kind": "dataset", "shape": None, "dtype": None,
                                          "tags": ["mnist"]}])
        user = nf.user()
        found = net.get(f"{API}/search", params={"text": "mnist"}, headers=user.headers).json()
        assert {(h["node"], h["id"]) for h in found["items"]} == {("alpha", 1), ("beta", 5)}
        assert all(h["node_url"] == f"https://{h['node']}.example.com" and not h["stale"] for h in found["items"])
        tagged = net.get(f"{API}/search", params={"tag": ["mnist"], "kind": "dataset"}, headers=user.headers).json()
        assert [(h["node"], h["id"], h["kind"]) for h in tagged["items"]] == [("beta", 6, "dataset")]
        both = net.get(f"{API}/search", params={"tag": ["mnist", "vision"]}, headers=user.headers).json()
        assert [h["id"] for h in both["items"]] == [1]
        page = net.get(f"{API}/search", params={"tag": "mnist", "limit": 2, "offset": 1}, headers=user.headers).json()
        assert page["total"] == 3 and len(page["items"]) == 2
        assert net.get(f"{API}/search", params={"text": "%"}, headers=user.headers).json()["total"] == 0
        assert net.get(f"{API}/search", params={"text": "mni"}, headers=user.headers).json()["total"] == 0
        prefixed = net.get(f"{API}/search", params={"text": "mni* TRAIN"}, headers=user.headers).json()
        assert [(h["node"], h["id"]) for h in prefixed["items"]] == [("alpha", 1)]
        assert net.get(f"{API}/search", params={"text": "dig*"}, headers=user.headers).json()["total"] == 1

    def test_the_total_is_counted_up_to_a_cap(
        self, net: TestClient, nf: NetworkFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from grid_runtime.network import catalogue

        monkeypatch.setattr(catalogue, "TOTAL_CAP", 5)
        alpha = approved(net, nf, "alpha")
        push(net, alpha, "alpha", upserts=[entry(i, f"common {i}", tags=["t"]) for i in range(1, 13)])
        user = nf.user()
        for params in ({"text": "common"}, {"tag": "t"}, {"text": "comm*"}):
            page = net.get(f"{API}/search", params={**params, "limit": 2}, headers=user.headers).json()
            assert (page["total"], page["total_is_exact"], len(page["items"])) == (5, False, 2), params
        deep = net.get(f"{API}/search", params={"text": "common", "limit": 4, "offset": 4}, headers=user.headers).json()
        assert (deep["total"], deep["total_is_exact"], [h["id"] for h in deep["items"]]) == (8, False, [5, 6, 7, 8])
        last = net.get(f"{API}/search", params={"tag": "t", "limit": 10, "offset": 10}, headers=user.headers).json()
        assert (last["total"], last["total_is_exact"], [h["id"] for h in last["items"]]) == (12, True, [11, 12])

    def test_a_reconciliation_drops_what_the_node_no_longer_has(self, net: TestClient, nf: NetworkFactory) -> None:
        alpha = approved(net, nf, "alpha")
        push(net, alpha, "alpha", upserts=[entry(1), entry(2), entry(3)])
        first = push(net, alpha, "alpha", begin_sync=True, upserts=[entry(1)])
        assert first.json()["removed_by_sync"] == 0
        last = push(net, alpha, "alpha", end_sync=True, upserts=[entry(3, "renamed")])
        assert last.json()["removed_by_sync"] == 1 and last.json()["entries"] == 2

    def test_a_node_not_heard_from_is_still_found_marked_stale(self, net: TestClient, nf: NetworkFactory) -> None:
        alpha = approved(net, nf, "alpha")
        push(net, alpha, "alpha", upserts=[entry(1, "old news")])
        with nf.sessions.begin() as session:
            session.execute(update(Association).values(last_push_at=utcnow() - timedelta(seconds=61)))
        user = nf.user()
        hits = net.get(f"{API}/search", params={"text": "old"}, headers=user.headers).json()["items"]
        assert [(h["name"], h["stale"]) for h in hits] == [("old news", True)]
        nodes = net.get(f"{API}/nodes", headers=user.headers).json()
        assert [(n["name"], n["entries"], n["stale"]) for n in nodes] == [("alpha", 1, True)]

    def test_statistics_of_a_node_need_view_statistics(self, net: TestClient, nf: NetworkFactory) -> None:
        approved(net, nf, "alpha")
        lacking = nf.user(capabilities=set(NETWORK_ALL - {NetworkCapability.view_statistics}))
        refused = net.get(f"{API}/nodes/1/statistics", headers=lacking.headers)
        assert refused.status_code == 403 and refused.json()["details"]["missing"] == ["view_statistics"]
        # alpha.example.com is not reachable: the Network says so, it does not fail.
        reader = nf.user(capabilities={NetworkCapability.view_statistics})
        unreachable = net.get(f"{API}/nodes/1/statistics", headers=reader.headers)
        assert unreachable.status_code == 503 and unreachable.json()["code"] == "unavailable"


class TestOnEveryDatabase:
    def test_push_search_and_end_on_sqlite_and_postgresql(self, tmp_path: Path, database_url: str) -> None:
        settings = NetworkSettings(state_dir=tmp_path / "any", database_url=database_url)
        with TestClient(create_app(settings)) as client:
            factory = NetworkFactory(client)
            alpha = approved(client, factory, "alpha")
            pushed = push(client, alpha, "alpha", begin_sync=True, end_sync=True,
                          upserts=[entry(1, "MNIST train", tags=["mnist"]), entry(2, "mnist test", tags=["mnist"]),
                                   entry(3, "census income", tags=["tabular"])])
            assert pushed.json()["entries"] == 3
            user = factory.user()
            for params, ids in (({"text": "mnist"}, [1, 2]), ({"text": "mnis* test"}, [2]), ({"tag": "mnist"}, [1, 2]),
                                ({"tag": "mnist", "text": "train"}, [1]), ({"text": "inc*", "kind": "tensor"}, [3])):
                found = client.get(f"{API}/search", params=params, headers=user.headers).json()
                assert [h["id"] for h in found["items"]] == ids, params
            admin = factory.user("Administrator")
            association = client.get(f"{API}/peer/association", headers=alpha).json()["association_id"]
            assert client.delete(f"{API}/associations/{association}", headers=admin.headers).status_code == 200
            assert client.get(f"{API}/search", params={"tag": "mnist"}, headers=user.headers).json()["total"] == 0
