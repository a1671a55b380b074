"""A rogue officer: a Compliance Officer (or an Administrator) acting alone to spend more than their budget.

Measured before the fix: an officer raised their own budget to 10⁶, wrote an auto-approve policy up to ε 10⁶,
had their own release auto-approved and downloaded it, and set the budget of an Administrator. Two people now
make every privacy decision: each of these is refused and the refusal names the rule that applied.
"""

from __future__ import annotations

import pytest
import torch

from gridctl.sdk.errors import GridctlError
from tests.attacks.conftest import Cluster, InProcess, finished, refused, unique
from tests.factories import MadeUser

OFFICER = "Compliance Officer"


def _budget_of(node: InProcess, user: MadeUser) -> float:
    response = node.get(user, "/users/me")
    assert response.status_code == 200, response.text
    return float(response.json()["budget_epsilon"])


class TestOwnBudget:
    @pytest.mark.parametrize("role", [OFFICER, "Administrator"])
    def test_nobody_raises_their_own_budget(self, node: InProcess, role: str) -> None:
        insider = node.factory.user(role, budget=1.0)
        response = node.client.put(f"/api/v1/users/{insider.id}/budget", json={"epsilon": 1e6},
                                   headers=insider.headers)
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["code"] == "forbidden"
        assert "own" in body["message"].lower()  # the two-person rule, named
        assert _budget_of(node, insider) == 1.0

    def test_an_officer_cannot_set_an_administrators_budget(self, node: InProcess) -> None:
        officer = node.factory.user(OFFICER, budget=1.0)
        admin = node.factory.user("Administrator", budget=1.0)
        response = node.client.put(f"/api/v1/users/{admin.id}/budget", json={"epsilon": 1e6},
                                   headers=officer.headers)
        assert response.status_code == 403, response.text
        assert "outrank" in response.json()["message"].lower()
        assert _budget_of(node, admin) == 1.0

    def test_an_officer_still_sets_a_data_scientists_budget(self, node: InProcess) -> None:
        officer = node.factory.user(OFFICER, budget=1.0)
        scientist = node.factory.user(budget=1.0)
        response = node.client.put(f"/api/v1/users/{scientist.id}/budget", json={"epsilon": 3.0},
                                   headers=officer.headers)
        assert response.status_code == 200, response.text
        assert _budget_of(node, scientist) == 3.0


class TestOwnRequests:
    def test_an_officer_cannot_approve_their_own_budget_request_but_another_officer_can(self, node: InProcess
                                                                                         ) -> None:
        officer, colleague = node.factory.user(OFFICER, budget=1.0), node.factory.user(OFFICER, budget=1.0)
        filed = node.client.post("/api/v1/requests", headers=officer.headers,
                                 json={"kind": "budget", "epsilon": 1e5, "reason": "more please"})
        assert filed.status_code == 201, filed.text
        request_id = filed.json()["id"]
        own = node.client.post(f"/api/v1/requests/{request_id}/approve", headers=officer.headers, json={})
        assert own.status_code == 403, own.text
        assert "own" in own.json()["message"].lower()
        assert _budget_of(node, officer) == 1.0
        decided = node.client.post(f"/api/v1/requests/{request_id}/approve", headers=colleague.headers, json={})
        assert decided.status_code == 200, decided.text
        assert _budget_of(node, officer) == pytest.approx(1.0 + 1e5)

    def test_an_officer_cannot_approve_the_release_of_a_private_tensor_they_asked_for(self, node: InProcess
                                                                                       ) -> None:
        node.client.patch("/api/v1/privacy/settings", headers=node.owner.headers,
                          json={"release_policy": "allow_non_private"}).raise_for_status()
        tensor = node.upload(unique("salaries"), torch.arange(10, dtype=torch.float32))
        officer = node.factory.user(OFFICER, budget=1.0)
        filed = node.client.post("/api/v1/requests", headers=officer.headers, json={
            "kind": "release", "target_type": "tensor", "target_id": tensor["id"], "reason": "for me"})
        assert filed.status_code == 201, filed.text
        assert filed.json()["state"] == "pending"  # a raw private tensor is never auto-approved
        own = node.client.post(f"/api/v1/requests/{filed.json()['id']}/approve", headers=officer.headers, json={})
        assert own.status_code == 403, own.text
        assert "own" in own.json()["message"].lower()
        data = node.client.get(f"/api/v1/releases/{filed.json()['id']}/data", headers=officer.headers)
        assert data.status_code != 200
        raw = node.client.get(f"/api/v1/tensors/{tensor['id']}/data", headers=officer.headers)
        assert raw.status_code == 403


class TestPolicies:
    def test_an_auto_approve_policy_above_the_nodes_cap_is_refused(self, node: InProcess) -> None:
        officer = node.factory.user(OFFICER)
        response = node.client.post("/api/v1/release-policies", headers=officer.headers,
                                    json={"max_epsilon": 1e6, "note": "approve everything"})
        assert 400 <= response.status_code < 500, response.text
        assert "cap" in response.json()["message"].lower()
        listed = node.client.get("/api/v1/release-policies", headers=officer.headers)
        assert listed.status_code == 200
        assert all(p["max_epsilon"] < 1e6 for p in listed.json())


class TestOwnReleaseThroughAPolicy:
    """The officer's own DP result, under a policy they wrote (within the cap): not auto-approved, not
    downloadable, and not approvable by themselves (Ray: the result must exist)."""

    def test_an_officers_own_release_is_neither_auto_approved_nor_self_approved(self, cluster: Cluster) -> None:
        officer, email = cluster.user("rogue-officer", budget=10.0, role=OFFICER)
        name, dataset_id = cluster.dataset("rogue", {"values": torch.arange(40, dtype=torch.float32)})
        cluster.grant(email, dataset_id, "compute")
        cap = float(cluster.owner().http.get("/privacy/settings").get("max_auto_approve_epsilon", 1.0) or 1.0)
        officer.http.post("/release-policies", json={"max_epsilon": cap, "note": "small releases",
                                                     "dataset_id": dataset_id})
        job = officer.jobs.statistic("count", dataset=name, member="values", epsilon=min(cap, 1.0) / 2)
        assert finished(job).status == "succeeded", job.error
        result_id = job.data["result_id"]
        request = officer.http.post("/requests", json={"kind": "release", "target_type": "result",
                                                       "target_id": result_id, "reason": "mine"})
        assert request["state"] not in ("approved", "auto_approved")
        assert refused(lambda: officer.http.get(f"/releases/{request['id']}/data")) is not None
        assert refused(lambda: officer.http.get(f"/results/{result_id}/data")) is not None
        own = refused(lambda: officer.http.post(f"/requests/{request['id']}/approve", json={}))
        assert isinstance(own, GridctlError) and own.code == "forbidden"
        assert "own" in own.message.lower()
        assert refused(lambda: officer.http.get(f"/releases/{request['id']}/data")) is not None
