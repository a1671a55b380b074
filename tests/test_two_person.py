"""Two people for privacy decisions (issue 9, item 4): nobody changes their own budget; nobody decides their
own request, by hand or by a policy they wrote; auto-approve policies are capped by a node setting and never
cover requests of users holding triage_requests; officers cannot set the budgets of users whose role
outranks theirs. Each refusal names the rule that applied."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grid_runtime.core.capabilities import Capability
from grid_runtime.node.budget.service import outranks
from tests.factories import Factory, MadeUser
from tests.test_release_requests import approve, dp_event, make_result, release

API = "/api/v1"


def _set_budget(client: TestClient, actor: MadeUser, user: MadeUser, epsilon: float) -> object:
    return client.put(f"{API}/users/{user.id}/budget", headers=actor.headers, json={"epsilon": epsilon})


class TestBudgets:
    def test_nobody_changes_their_own_budget(self, client: TestClient, factory: Factory) -> None:
        for role in ("Compliance Officer", "Administrator"):
            me = factory.user(role, budget=1.0)
            response = client.put(f"{API}/users/{me.id}/budget", headers=me.headers, json={"epsilon": 1e6})
            assert response.status_code == 403
            assert response.json()["details"]["rule"] == "own_budget" and "own" in response.json()["message"]
        owner = factory.owner()
        mine = client.put(f"{API}/users/{owner.id}/budget", headers=owner.headers, json={"epsilon": 1e6})
        assert mine.status_code == 403 and mine.json()["details"]["rule"] == "own_budget"

    def test_an_officer_cannot_set_the_budget_of_a_role_that_outranks_theirs(self, client: TestClient,
                                                                             factory: Factory) -> None:
        officer, admin = factory.user("Compliance Officer"), factory.user("Administrator")
        refused = client.put(f"{API}/users/{admin.id}/budget", headers=officer.headers, json={"epsilon": 50.0})
        assert refused.status_code == 403
        assert refused.json()["details"] == {"rule": "outranked", "role": "Administrator"}
        assert client.put(f"{API}/users/{officer.id}/budget", headers=admin.headers,
                          json={"epsilon": 5.0}).status_code == 200
        owner = factory.owner()
        assert client.put(f"{API}/users/{owner.id}/budget", headers=admin.headers,
                          json={"epsilon": 5.0}).json()["details"]["rule"] == "outranked"
        scientist = factory.user()
        assert client.put(f"{API}/users/{scientist.id}/budget", headers=officer.headers,
                          json={"epsilon": 5.0}).status_code == 200

    def test_the_rank_is_a_strict_superset_of_capabilities(self, factory: Factory) -> None:
        officer = {Capability.triage_requests, Capability.manage_budgets, Capability.view_statistics}
        assert outranks(officer | {Capability.manage_users}, officer)
        assert not outranks(officer, officer)  # equals do not outrank: officers may set each other's budgets
        assert not outranks({Capability.manage_users}, officer)  # incomparable: no rank

    def test_approving_a_budget_request_follows_the_same_rules(self, client: TestClient, factory: Factory) -> None:
        officer, admin = factory.user("Compliance Officer"), factory.user("Administrator", budget=1.0)
        asked = client.post(f"{API}/requests", headers=admin.headers,
                            json={"kind": "budget", "epsilon": 100.0, "reason": "a study"}).json()
        refused = approve(client, officer, asked["id"])
        assert refused.status_code == 403 and refused.json()["details"]["rule"] == "outranked"
        mine = client.post(f"{API}/requests", headers=officer.headers,
                           json={"kind": "budget", "epsilon": 100.0, "reason": "mine"}).json()
        own = approve(client, officer, mine["id"])
        assert own.status_code == 403 and own.json()["details"]["rule"] == "own_request"

    def test_the_ceiling_is_the_highest_budget_ever_set(self, client: TestClient, factory: Factory) -> None:
        officer, scientist = factory.user("Compliance Officer"), factory.user(budget=1.0)
        _set_budget(client, officer, scientist, 8.0)
        _set_budget(client, officer, scientist, 2.0)
        shown = client.get(f"{API}/budget", headers=scientist.headers).json()
        assert shown["budget_epsilon"] == 2.0 and shown["ceiling_epsilon"] == 8.0
        assert client.get(f"{API}/budget/users/{scientist.id}", headers=officer.headers).json()[
            "ceiling_epsilon"] == 8.0


class TestOwnRequests:
    def test_an_officer_cannot_approve_their_own_release(self, client: TestClient, factory: Factory) -> None:
        officer, other = factory.user("Compliance Officer", budget=10.0), factory.user("Compliance Officer")
        request = release(client, officer, make_result(factory, officer.id, event=dp_event())).json()
        own = approve(client, officer, request["id"])
        assert own.status_code == 403 and own.json()["details"]["rule"] == "own_request"
        assert approve(client, other, request["id"]).status_code == 200
        assert client.get(f"{API}/releases/{request['id']}/data", headers=officer.headers).status_code == 200


class TestPolicies:
    def test_a_policy_may_not_name_more_than_the_node_allows(self, client: TestClient, factory: Factory) -> None:
        officer, owner = factory.user("Compliance Officer"), factory.owner()
        refused = client.post(f"{API}/release-policies", headers=officer.headers, json={"max_epsilon": 1e6})
        assert refused.status_code == 403
        assert refused.json()["details"] == {"rule": "policy_cap", "max_policy_epsilon": 1.0}
        settings = client.patch(f"{API}/privacy/settings", headers=owner.headers, json={"max_policy_epsilon": 2.0})
        assert settings.status_code == 200 and settings.json()["max_policy_epsilon"] == 2.0
        assert client.post(f"{API}/release-policies", headers=officer.headers,
                           json={"max_epsilon": 2.0}).status_code == 201
        assert client.post(f"{API}/release-policies", headers=officer.headers,
                           json={"max_epsilon": 2.1}).status_code == 403

    def test_a_policy_never_covers_a_request_of_someone_holding_triage_requests(
            self, client: TestClient, factory: Factory) -> None:
        author, officer = factory.user("Compliance Officer"), factory.user("Compliance Officer", budget=10.0)
        client.post(f"{API}/release-policies", headers=author.headers, json={"max_epsilon": 1.0})
        cheap = dp_event(3.0)
        body = release(client, officer, make_result(factory, officer.id, event=cheap)).json()
        assert body["state"] == "pending"
        scientist = factory.user(budget=10.0)
        assert release(client, scientist, make_result(factory, scientist.id, event=cheap)).json()[
            "state"] == "auto_approved"

    def test_a_policy_never_covers_its_authors_own_request(self, client: TestClient, factory: Factory) -> None:
        author = factory.user("Compliance Officer", budget=10.0)
        client.post(f"{API}/release-policies", headers=author.headers, json={"max_epsilon": 1.0})
        # the author no longer holds triage_requests (demoted), but still wrote the policy
        owner = factory.owner()
        assert client.patch(f"{API}/users/{author.id}", headers=owner.headers,
                            json={"role": "Data Scientist"}).status_code == 200
        body = release(client, author, make_result(factory, author.id, event=dp_event(3.0))).json()
        assert body["state"] == "pending"

    def test_lowering_the_node_cap_stops_larger_policies_from_applying(self, client: TestClient,
                                                                       factory: Factory) -> None:
        officer, owner = factory.user("Compliance Officer"), factory.owner()
        client.post(f"{API}/release-policies", headers=officer.headers, json={"max_epsilon": 1.0})
        client.patch(f"{API}/privacy/settings", headers=owner.headers, json={"max_policy_epsilon": 0.01})
        scientist = factory.user(budget=10.0)
        assert release(client, scientist, make_result(factory, scientist.id, event=dp_event(3.0))).json()[
            "state"] == "pending"


class TestFingerprintSecret:
    def test_the_node_makes_its_fingerprint_secret_at_start_owner_only(self, client: TestClient) -> None:
        from grid_runtime.node.budget.fingerprints import secret_path

        path = secret_path(client.app.state.settings.state_dir)  # type: ignore[attr-defined]
        assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
        assert len(path.read_text().strip()) >= 32
