"""Release requests: filing (the cost paid at admission and the keyed fingerprint, from the Node), auto-deny
rules, officers' policies, decisions (a release of a paid result spends nothing more; fingerprints), who may
download, the cost card, and, for what was never charged at admission (results of jobs admitted before
charging moved there, raw tensors), the charge on approval with concurrent approvals that must never
overspend (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from grid_runtime.core.database import utcnow
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.budget import ledger
from grid_runtime.node.budget.models import LedgerEntry
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.requests.models import Request
from grid_runtime.node.users.models import User
from grid_runtime.privacy import accounting, events
from tests.factories import Factory, MadeUser

API = "/api/v1"
SPEC = {"format": "gridctl.model-spec/1", "input_shape": [4],
        "layers": [{"type": "Linear", "in_features": 4, "out_features": 2}]}


def dp_event(sigma: float = 1.0, *, q: float = 0.02, steps: int = 100) -> dict[str, Any]:
    return events.event_to_dict(events.dp_sgd_event(sample_rate=q, noise_multiplier=sigma, steps=steps))


@dataclass(frozen=True)
class _Terms:
    order: float = accounting.DEFAULT_RDP_ORDER
    delta: float = accounting.DEFAULT_DELTA


def make_result(factory: Factory, owner: int, *, event: dict[str, Any] | None = None, dataset: int | None = None,
                inputs: dict[str, int] | None = None, blob: bytes | None = None,
                metrics: list[dict[str, Any]] | None = None, charged: bool = True) -> int:
    """A finished training job and its result row (with its safetensors-like blob in the object store).

    ``charged``: its event was charged when the job was admitted (the ledger entry admission writes, naming
    the job); False: a job admitted before charging moved to admission, whose release is charged instead."""
    data = blob if blob is not None else f"weights-{owner}-{event}".encode()
    sha = hashlib.sha256(data).hexdigest()
    with factory.sessions.begin() as session:
        job = Job(kind="train", state="succeeded", owner_id=owner, dataset_id=dataset, inputs=inputs or {},
                  spec=SPEC, settings={"epochs": 1, "batch_size": 8, "dp": {"noise_multiplier": 1.0}},
                  planned_event=event, metrics=metrics or [{"epoch": 1, "loss": 0.9, "accuracy": 0.5}])
        session.add(job)
        session.flush()
        key = f"results/{job.id}.safetensors"
        result = Result(job_id=job.id, owner_id=owner, kind="model", object_key=key, sha256=sha,
                        size_bytes=len(data), lineage={"inputs": inputs or {}}, event=event,
                        epsilon=None, delta=1e-5)
        session.add(result)
        session.flush()
        result_id = result.id
        if charged:
            user = session.get(User, owner)
            assert user is not None
            ledger.record(session, _Terms(), user_id=owner, user_email=user.email,
                          cost=ledger.cost_of(event, _Terms()), dataset_ids=[dataset] if dataset else [],
                          dataset_id=dataset, job_id=job.id)
    settings = factory.client.app.state.settings  # type: ignore[attr-defined]
    store = ObjectStore(settings.resolved_object_store_url, settings.object_store_options)
    import tempfile

    with tempfile.NamedTemporaryFile() as fh:
        fh.write(data)
        fh.flush()
        store.put_file(key, fh.name)
    return result_id


def release(client: TestClient, user: MadeUser, target_id: int, target_type: str = "result") -> Any:
    return client.post(f"{API}/requests", headers=user.headers,
                       json={"kind": "release", "target_type": target_type, "target_id": target_id,
                             "reason": "to evaluate the model"})


def approve(client: TestClient, officer: MadeUser, request_id: int, **body: Any) -> Any:
    return client.post(f"{API}/requests/{request_id}/approve", headers=officer.headers, json=body or None)


def cap_for(n: int, event: dict[str, Any], delta: float = 1e-5, order: float = accounting.DEFAULT_RDP_ORDER) -> float:
    """A budget ε that admits exactly ``n`` of these events under the filter."""
    rdp = accounting.rdp_at_order(events.event_from_dict(event), order)
    return accounting.epsilon_from_rdp((n + 0.5) * rdp, order, delta)


def ledger_rows(factory: Factory) -> list[LedgerEntry]:
    with factory.sessions() as session:
        return list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))


@pytest.fixture
def officer(factory: Factory) -> MadeUser:
    return factory.user("Compliance Officer")


class TestFiling:
    def test_files_a_pending_release_with_the_node_computed_cost_and_fingerprint(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user(budget=10.0)
        event = dp_event()
        result = make_result(factory, user.id, event=event)
        response = release(client, user, result)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["state"] == "pending" and body["kind"] == "release"
        expected = accounting.epsilon(events.event_from_dict(event), 1e-5)
        assert body["payload"]["epsilon"] == pytest.approx(expected) and body["payload"]["paid"] is True
        # the fingerprint is for officers: a keyed HMAC, not the artifact's sha256, and not shown to the requester
        assert "fingerprint" not in body["payload"] and "sha256" not in body["payload"]
        with factory.sessions() as session:
            sha = session.get(Result, result).sha256  # type: ignore[union-attr]
        seen = client.get(f"{API}/requests/{body['id']}", headers=factory.user("Compliance Officer").headers).json()
        assert len(seen["payload"]["fingerprint"]) == 64 and seen["payload"]["fingerprint"] != sha
        assert seen["card"]["fingerprint"] == seen["payload"]["fingerprint"]
        assert body["payload"]["mechanism"].startswith("DP-SGD: 100 steps")
        assert body["expires_at"] is not None
        assert [r.request_id for r in ledger_rows(factory)] == [None]  # the admission's charge alone

    def test_refuses_a_cost_sent_by_the_client(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        response = client.post(f"{API}/requests", headers=user.headers,
                               json={"kind": "release", "target_type": "result", "target_id": result,
                                     "epsilon": 0.0})
        assert response.status_code == 422
        assert "epsilon" in response.json()["message"]

    def test_refuses_someone_elses_result(self, client: TestClient, factory: Factory) -> None:
        owner, other = factory.user(budget=10.0), factory.user(budget=10.0)
        result = make_result(factory, owner.id, event=dp_event())
        response = release(client, other, result)
        assert response.status_code == 403
        assert factory.count(Request) == 0

    def test_refuses_a_second_release_while_one_is_pending(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        first = release(client, user, result).json()
        again = release(client, user, result)
        assert again.status_code == 409
        assert f"request {first['id']}" in again.json()["message"]

    def test_an_unpaid_result_is_auto_denied_over_the_budget_with_a_reason_and_spends_nothing(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user(budget=1.0)
        result = make_result(factory, user.id, event=dp_event(0.7), charged=False)
        body = release(client, user, result).json()
        assert body["state"] == "auto_denied"
        assert "over your privacy budget" in body["decision_note"]
        assert "cap of ε 1" in body["decision_note"]
        assert ledger_rows(factory) == []
        shown = client.get(f"{API}/requests/{body['id']}", headers=user.headers).json()
        assert shown["decision_note"] == body["decision_note"]

    def test_an_unpaid_result_is_auto_denied_over_a_dataset_cap(self, client: TestClient, factory: Factory,
                                                                officer: MadeUser) -> None:
        user = factory.user(budget=100.0)
        dataset = factory.dataset(tensors=[factory.tensor()])
        assert client.put(f"{API}/budget/datasets/{dataset}", headers=officer.headers,
                          json={"epsilon": 2.0}).status_code == 200
        result = make_result(factory, user.id, event=dp_event(0.8), dataset=dataset, charged=False)
        body = release(client, user, result).json()
        assert body["state"] == "auto_denied"
        assert f"dataset {dataset}" in body["decision_note"]

    def test_a_non_private_result_is_auto_denied_under_dp_only(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=100.0)
        result = make_result(factory, user.id, event=None)
        body = release(client, user, result).json()
        assert body["state"] == "auto_denied"
        assert "not differentially private" in body["decision_note"]
        assert "dp_only" in body["decision_note"]
        assert body["payload"]["non_private"] is True and body["payload"]["epsilon"] is None

    def test_a_private_tensor_is_auto_denied_under_dp_only(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=100.0)
        tensor = factory.tensor(visibility="private")
        body = release(client, user, tensor, "tensor").json()
        assert body["state"] == "auto_denied"
        assert "not differentially private" in body["decision_note"]

    def test_a_tensor_the_user_may_download_needs_no_release(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor(visibility="public")
        response = release(client, user, tensor, "tensor")
        assert response.status_code == 409
        assert "already download" in response.json()["message"]


def allow_non_private(client: TestClient, factory: Factory) -> None:
    admin = factory.user("Administrator")
    response = client.patch(f"{API}/privacy/settings", headers=admin.headers,
                            json={"release_policy": "allow_non_private"})
    assert response.status_code == 200, response.text
    assert response.json()["release_policy"] == "allow_non_private"


class TestNonPrivatePolicy:
    def test_a_private_tensor_waits_flagged_non_private(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        allow_non_private(client, factory)
        user = factory.user(budget=1.0)
        tensor = factory.tensor(visibility="private")
        body = release(client, user, tensor, "tensor").json()
        assert body["state"] == "pending"
        assert body["payload"]["non_private"] is True
        card = client.get(f"{API}/requests/{body['id']}", headers=officer.headers).json()["card"]
        assert card["non_private"] is True and card["epsilon"] is None
        assert "Not differentially private" in card["reading"]
        approved = approve(client, officer, body["id"])
        assert approved.status_code == 200, approved.text
        rows = ledger_rows(factory)
        assert len(rows) == 1 and rows[0].non_private and rows[0].rdp is None
        budget = client.get(f"{API}/budget", headers=user.headers).json()
        assert budget["non_private_releases"] == 1 and budget["spent_epsilon"] == 0

    def test_changing_the_policy_needs_edit_settings(self, client: TestClient, factory: Factory,
                                                     officer: MadeUser) -> None:
        response = client.patch(f"{API}/privacy/settings", headers=officer.headers,
                                json={"release_policy": "allow_non_private"})
        assert response.status_code == 403


class TestDecisions:
    def test_approving_a_paid_result_spends_nothing_more(self, client: TestClient, factory: Factory,
                                                         officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        event = dp_event()
        result = make_result(factory, user.id, event=event)
        before = client.get(f"{API}/budget", headers=user.headers).json()
        request = release(client, user, result).json()
        response = approve(client, officer, request["id"], note="looks fine")
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "approved"
        rows = ledger_rows(factory)
        assert [(r.user_id, r.request_id) for r in rows] == [(user.id, None)]  # the admission's entry only
        assert rows[0].rdp == pytest.approx(accounting.rdp_at_order(events.event_from_dict(event), 6.0))
        assert client.get(f"{API}/budget", headers=user.headers).json() == before
        assert approve(client, officer, request["id"]).status_code == 409
        assert len(ledger_rows(factory)) == 1

    def test_approving_an_unpaid_result_debits_the_ledger_once(self, client: TestClient, factory: Factory,
                                                               officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        event = dp_event()
        result = make_result(factory, user.id, event=event, charged=False)
        request = release(client, user, result).json()
        assert request["payload"]["paid"] is False
        assert approve(client, officer, request["id"]).status_code == 200
        rows = ledger_rows(factory)
        assert [(r.user_id, r.request_id, r.result_id) for r in rows] == [(user.id, request["id"], result)]
        assert approve(client, officer, request["id"]).status_code == 409
        assert len(ledger_rows(factory)) == 1

    def test_a_stale_fingerprint_is_refused(self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        request = release(client, user, result).json()
        with factory.sessions() as session:
            sha = session.get(Result, result).sha256  # type: ignore[union-attr]
        plain = approve(client, officer, request["id"], fingerprint=sha)  # the content hash is not the fingerprint
        assert plain.status_code == 409 and "fingerprint" in plain.json()["message"]
        response = approve(client, officer, request["id"], fingerprint="0" * 64)
        assert response.status_code == 409
        fingerprint = client.get(f"{API}/requests/{request['id']}", headers=officer.headers).json()["card"][
            "fingerprint"]
        good = approve(client, officer, request["id"], fingerprint=fingerprint.upper())
        assert good.status_code == 200, good.text

    def test_an_artifact_changed_since_the_request_is_refused(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), charged=False)
        request = release(client, user, result).json()
        fingerprint = client.get(f"{API}/requests/{request['id']}", headers=officer.headers).json()["card"][
            "fingerprint"]
        with factory.sessions.begin() as session:
            session.execute(update(Result).where(Result.id == result).values(sha256="f" * 64))
        response = approve(client, officer, request["id"], fingerprint=fingerprint)
        assert response.status_code == 409
        assert "changed" in response.json()["message"]
        assert ledger_rows(factory) == []

    def test_approving_an_unpaid_result_over_the_budget_is_refused_and_the_request_stays_pending(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        event = dp_event()
        user = factory.user(budget=cap_for(1, event))
        first = release(client, user, make_result(factory, user.id, event=event, charged=False)).json()
        second = release(client, user, make_result(factory, user.id, event=event, charged=False)).json()
        assert first["state"] == second["state"] == "pending"
        assert approve(client, officer, first["id"]).status_code == 200
        refused = approve(client, officer, second["id"])
        assert refused.status_code == 409
        assert refused.json()["code"] == "budget_exceeded"
        assert "further event that fits" in refused.json()["message"]
        assert client.get(f"{API}/requests/{second['id']}", headers=user.headers).json()["state"] == "pending"
        assert len(ledger_rows(factory)) == 1

    def test_denied_withdrawn_and_expired_requests_spend_nothing(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        user = factory.user(budget=10.0)
        denied, withdrawn, expired = (release(client, user, make_result(factory, user.id, event=dp_event(s))).json()
                                      for s in (1.0, 1.1, 1.2))
        assert client.post(f"{API}/requests/{denied['id']}/deny", headers=officer.headers,
                           json={"reason": "too early"}).json()["state"] == "denied"
        assert client.post(f"{API}/requests/{withdrawn['id']}/withdraw",
                           headers=user.headers).json()["state"] == "withdrawn"
        with factory.sessions.begin() as session:
            session.execute(update(Request).where(Request.id == expired["id"])
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
        assert client.get(f"{API}/requests/{expired['id']}", headers=user.headers).json()["state"] == "expired"
        # charged when their jobs were admitted, whatever the decision; the decisions spend nothing more
        assert [r.request_id for r in ledger_rows(factory)] == [None, None, None]

    def test_deny_needs_a_reason(self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        request = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        response = client.post(f"{API}/requests/{request['id']}/deny", headers=officer.headers, json={})
        assert response.status_code == 422 and "reason" in response.json()["message"]

    def test_a_data_scientist_cannot_approve(self, client: TestClient, factory: Factory) -> None:
        user, other = factory.user(budget=10.0), factory.user()
        request = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        assert approve(client, other, request["id"]).status_code == 403


class TestDownload:
    def test_only_the_requester_downloads_an_approved_release(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), blob=b"the weights")
        request = release(client, user, result).json()
        early = client.get(f"{API}/releases/{request['id']}/data", headers=user.headers)
        assert early.status_code == 409 and "pending" in early.json()["message"]
        approve(client, officer, request["id"])
        got = client.get(f"{API}/releases/{request['id']}/data", headers=user.headers)
        assert got.status_code == 200 and got.content == b"the weights"
        assert got.headers["X-Content-SHA256"] == hashlib.sha256(b"the weights").hexdigest()
        assert client.get(f"{API}/releases/{request['id']}/data", headers=officer.headers).status_code == 403

    def test_a_released_private_tensor_is_downloadable_by_its_requester(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        allow_non_private(client, factory)
        user = factory.user()
        tensor = factory.tensor(visibility="private")
        settings = client.app.state.settings  # type: ignore[attr-defined]
        store = ObjectStore(settings.resolved_object_store_url, settings.object_store_options)
        with factory.sessions() as session:
            from grid_runtime.node.tensors.models import Tensor

            key = session.get(Tensor, tensor).object_key  # type: ignore[union-attr]
        import tempfile

        with tempfile.NamedTemporaryFile() as fh:
            fh.write(b"raw tensor")
            fh.flush()
            store.put_file(key, fh.name)
        request = release(client, user, tensor, "tensor").json()
        approve(client, officer, request["id"])
        got = client.get(f"{API}/releases/{request['id']}/data", headers=user.headers)
        assert got.status_code == 200 and got.content == b"raw tensor"


class TestPolicies:
    def test_auto_approves_under_the_threshold_on_the_dataset_and_spends_nothing_more(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        dataset = factory.dataset(tensors=[factory.tensor()])
        created = client.post(f"{API}/release-policies", headers=officer.headers,
                              json={"dataset_id": dataset, "max_epsilon": 1.0, "note": "small models"})
        assert created.status_code == 201, created.text
        user = factory.user(budget=10.0)
        cheap = release(client, user, make_result(factory, user.id, event=dp_event(3.0), dataset=dataset)).json()
        assert cheap["state"] == "auto_approved"
        assert f"policy {created.json()['id']}" in cheap["decision_note"]
        dear = release(client, user, make_result(factory, user.id, event=dp_event(1.0), dataset=dataset)).json()
        assert dear["state"] == "pending"
        elsewhere = release(client, user, make_result(factory, user.id, event=dp_event(3.0))).json()
        assert elsewhere["state"] == "pending"
        assert [r.request_id for r in ledger_rows(factory)] == [None, None, None]  # the three admissions'
        unpaid = release(client, user, make_result(factory, user.id, event=dp_event(3.0), dataset=dataset,
                                                   charged=False)).json()
        assert unpaid["state"] == "auto_approved"
        assert [r.request_id for r in ledger_rows(factory)][-1] == unpaid["id"]  # charged now, never before

    def test_a_policy_never_approves_past_the_budget(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        owner = factory.owner()
        client.patch(f"{API}/privacy/settings", headers=owner.headers, json={"max_policy_epsilon": 100.0})
        client.post(f"{API}/release-policies", headers=officer.headers, json={"max_epsilon": 100.0})
        user = factory.user(budget=1.0)
        body = release(client, user, make_result(factory, user.id, event=dp_event(0.8), charged=False)).json()
        assert body["state"] == "auto_denied"

    def test_policies_are_listed_and_removed_by_officers_only(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        user = factory.user()
        assert client.post(f"{API}/release-policies", headers=user.headers,
                           json={"max_epsilon": 1.0}).status_code == 403
        policy = client.post(f"{API}/release-policies", headers=officer.headers, json={"max_epsilon": 1.0}).json()
        assert [p["id"] for p in client.get(f"{API}/release-policies", headers=officer.headers).json()] == [
            policy["id"]]
        assert client.delete(f"{API}/release-policies/{policy['id']}", headers=officer.headers).status_code == 204
        assert client.get(f"{API}/release-policies", headers=officer.headers).json() == []
        assert "release_policy.created" in factory.audit_actions()


class TestCostCard:
    def test_shows_everything_an_officer_needs(self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        dataset = factory.dataset(tensors=[factory.tensor()])
        client.put(f"{API}/budget/datasets/{dataset}", headers=officer.headers, json={"epsilon": 20.0})
        first = release(client, user, make_result(factory, user.id, event=dp_event(1.5), dataset=dataset)).json()
        approve(client, officer, first["id"])
        second = release(client, user, make_result(factory, user.id, event=dp_event(), dataset=dataset,
                                                   metrics=[{"epoch": 1, "loss": 0.7}])).json()
        card = client.get(f"{API}/requests/{second['id']}", headers=officer.headers).json()["card"]
        assert card["mechanism"].startswith("DP-SGD")
        assert card["epsilon"] == pytest.approx(second["payload"]["epsilon"])
        first_event = events.event_from_dict(dp_event(1.5))
        assert card["user"]["epsilon_before"] == pytest.approx(
            accounting.epsilon_from_rdp(accounting.rdp_at_order(first_event, 6.0), 6.0, 1e-5))
        assert card["user"]["epsilon_after"] > card["user"]["epsilon_before"]
        first_rdp = accounting.rdp_at_order(first_event, 6.0)
        assert card["user"]["remaining_before"] == pytest.approx(
            accounting.epsilon_from_rdp(accounting.rdp_budget(10.0, 1e-5, 6.0) - first_rdp, 6.0, 1e-5))
        assert card["paid_at_admission"] is True and card["user"]["ceiling_epsilon"] == 10.0
        assert card["dataset"]["id"] == dataset and card["dataset"]["cap_epsilon"] == 20.0
        assert card["dataset"]["epsilon_before"] == pytest.approx(card["user"]["epsilon_before"])
        assert [h["id"] for h in card["history"]] == [first["id"]]
        assert card["history"][0]["state"] == "approved"
        assert card["layers"][0]["layer"] == "Linear" and card["layers"][0]["parameters"] == 10
        assert card["metrics"] == [{"epoch": 1, "loss": 0.7}]
        assert "hit rate" in card["reading"]
        assert card["settings"]["epochs"] == 1

    def test_the_requester_does_not_see_the_card(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        request = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        assert client.get(f"{API}/requests/{request['id']}", headers=user.headers).json()["card"] is None

    def test_an_approved_request_shows_before_without_its_own_debit(
        self, client: TestClient, factory: Factory, officer: MadeUser
    ) -> None:
        user = factory.user(budget=10.0)
        request = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        approve(client, officer, request["id"])
        card = client.get(f"{API}/requests/{request['id']}", headers=officer.headers).json()["card"]
        assert card["user"]["epsilon_before"] == 0
        assert math.isclose(card["user"]["epsilon_after"], client.get(
            f"{API}/budget", headers=user.headers).json()["spent_epsilon"])


class TestConcurrency:
    N = 7

    def test_fifty_concurrent_approvals_of_unpaid_results_never_overspend(self, any_db_client: TestClient,
                                                        any_db_factory: Factory) -> None:
        client, factory = any_db_client, any_db_factory
        event = dp_event()
        budget = cap_for(self.N, event)
        user = factory.user(budget=budget)
        officers = [factory.user("Compliance Officer") for _ in range(3)]
        results = [make_result(factory, user.id, event=event, blob=f"w{i}".encode(), charged=False)
                   for i in range(50)]
        start = threading.Barrier(50)

        def file(result: int) -> Any:
            start.wait()
            return release(client, user, result)

        with ThreadPoolExecutor(50) as pool:
            filed = list(pool.map(file, results))
        assert all(r.status_code == 201 for r in filed), [r.text for r in filed if r.status_code != 201]
        assert {r.json()["state"] for r in filed} == {"pending"}
        ids = [r.json()["id"] for r in filed]

        def decide(i: int) -> Any:
            start.wait()
            return approve(client, officers[i % len(officers)], ids[i])

        with ThreadPoolExecutor(50) as pool:
            decided = list(pool.map(decide, range(50)))
        codes = sorted(r.status_code for r in decided)
        assert codes.count(200) == self.N, [r.text for r in decided if r.status_code != 200][:3]
        assert {r.json()["code"] for r in decided if r.status_code != 200} == {"budget_exceeded"}
        rows = ledger_rows(factory)
        assert len(rows) == self.N
        rdp = sum(r.rdp for r in rows if r.rdp is not None)
        assert rdp <= accounting.rdp_budget(budget, 1e-5, 6.0)
        spent = client.get(f"{API}/budget", headers=user.headers).json()
        assert spent["spent_epsilon"] <= budget
        with factory.sessions() as session:
            states = list(session.scalars(select(Request.state).where(Request.id.in_(ids))))
        assert states.count("approved") == self.N and states.count("pending") == 50 - self.N
