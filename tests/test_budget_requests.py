"""Budget requests: a data scientist asks for more ε with a reason; a holder of manage_budgets decides;
approving raises the budget by what was asked."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from grid_runtime.core.capabilities import Capability
from tests.factories import Factory, MadeUser

API = "/api/v1"


def ask(client: TestClient, user: MadeUser, epsilon: Any = 2.0, reason: str = "a second experiment") -> Any:
    return client.post(f"{API}/requests", headers=user.headers,
                       json={"kind": "budget", "epsilon": epsilon, "reason": reason})


def budget_of(client: TestClient, user: MadeUser) -> float:
    return client.get(f"{API}/budget", headers=user.headers).json()["budget_epsilon"]  # type: ignore[no-any-return]


class TestBudgetRequests:
    def test_approving_raises_the_budget_by_what_was_asked(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(budget=1.0), factory.user("Compliance Officer")
        request = ask(client, user, 2.5).json()
        assert request["state"] == "pending" and request["payload"]["additional_epsilon"] == 2.5
        response = client.post(f"{API}/requests/{request['id']}/approve", headers=officer.headers)
        assert response.status_code == 200, response.text
        assert budget_of(client, user) == 3.5
        assert "user.budget_set" in factory.audit_actions()

    def test_only_manage_budgets_decides(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=1.0)
        triager = factory.user(capabilities={Capability.triage_requests})
        request = ask(client, user).json()
        refused = client.post(f"{API}/requests/{request['id']}/approve", headers=triager.headers)
        assert refused.status_code == 403 and "manage_budgets" in refused.json()["message"]
        assert budget_of(client, user) == 1.0

    def test_denial_keeps_the_budget_and_the_requester_reads_why(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(budget=1.0), factory.user("Compliance Officer")
        request = ask(client, user).json()
        client.post(f"{API}/requests/{request['id']}/deny", headers=officer.headers,
                    json={"reason": "finish the first study"})
        shown = client.get(f"{API}/requests/{request['id']}", headers=user.headers).json()
        assert shown["state"] == "denied" and shown["decision_note"] == "finish the first study"
        assert budget_of(client, user) == 1.0

    def test_needs_a_reason_and_a_positive_epsilon(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        assert ask(client, user, reason="  ").status_code == 422
        bad = ask(client, user, epsilon=-1)
        assert bad.status_code == 422 and "epsilon" in bad.json()["message"]

    def test_one_pending_request_at_a_time(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        first = ask(client, user).json()
        again = ask(client, user)
        assert again.status_code == 409 and f"request {first['id']}" in again.json()["message"]
        client.post(f"{API}/requests/{first['id']}/withdraw", headers=user.headers)
        assert ask(client, user).status_code == 201

    def test_officers_list_pending_budget_requests(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(), factory.user("Compliance Officer")
        request = ask(client, user).json()
        listed = client.get(f"{API}/requests", headers=officer.headers,
                            params={"status": "pending", "kind": "budget"}).json()
        assert [r["id"] for r in listed["items"]] == [request["id"]]
