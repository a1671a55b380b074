"""Issue 11: a request is about exactly the data it was filed for, ids are never reused, and a request (or a
result, a job, a user) that the caller may not see is indistinguishable from one that does not exist.

- An access request records its target's fingerprint (the keyed HMAC of ``budget.fingerprints``) for officers
  only; approving one whose target was replaced or is gone cancels it with a note and answers 409: nothing is
  ever granted on other data.
- Deleting a tensor or a dataset expires the pending requests of every kind on it.
- Deleted rows' ids are never handed out again (SQLite ``AUTOINCREMENT``; PostgreSQL sequences).
- "Exists but not yours" and "does not exist" get the same status and the same body (the id aside).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from grid_runtime.core.capabilities import Capability
from grid_runtime.node.budget import fingerprints
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.requests.models import Request
from grid_runtime.node.tensors.models import Tensor
from tests.factories import Factory, MadeUser
from tests.test_release_requests import approve, dp_event, make_result, release

API = "/api/v1"
OFFICER = "Compliance Officer"


def _ask_access(client: TestClient, user: MadeUser, target_id: int, target_type: str = "tensor") -> dict[str, Any]:
    response = client.post(f"{API}/requests", headers=user.headers, json={
        "kind": "access", "target_type": target_type, "target_id": target_id, "level": "download",
        "reason": "training a fraud model"})
    assert response.status_code == 201, response.text
    return response.json()


def _show(client: TestClient, who: MadeUser, request_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/requests/{request_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _grants_of(factory: Factory, user: MadeUser) -> list[tuple[str, int, str]]:
    with factory.sessions() as session:
        rows = session.scalars(select(Grant).where(Grant.user_id == user.id).order_by(Grant.id))
        return [(g.target_type, g.target_id, g.level) for g in rows]


def _state_dir(client: TestClient) -> Any:
    return client.app.state.settings.state_dir  # type: ignore[attr-defined]


def _sha256_of(factory: Factory, tensor_id: int) -> str:
    with factory.sessions() as session:
        tensor = session.get(Tensor, tensor_id)
        assert tensor is not None
        return tensor.sha256


# --- the target's fingerprint ------------------------------------------------------------------------------


class TestTargetFingerprint:
    def test_officers_see_the_fingerprint_and_the_requester_never_does(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        scientist, officer = any_db_factory.user(), any_db_factory.user(OFFICER)
        tensor = any_db_factory.tensor()
        expected = fingerprints.fingerprint(_state_dir(any_db_client), target_type="tensor",
                                            sha256=_sha256_of(any_db_factory, tensor))
        filed = _ask_access(any_db_client, scientist, tensor)
        assert _show(any_db_client, officer, filed["id"])["payload"]["fingerprint"] == expected
        listed = any_db_client.get(f"{API}/requests", headers=scientist.headers)
        for seen in (filed, _show(any_db_client, scientist, filed["id"]), listed.json()):
            text = json.dumps(seen)
            assert "fingerprint" not in text and expected not in text
        assert filed["payload"] == {"level": "download", "level_at_request": "search",
                                    "rule_at_request": "visibility"}

    def test_a_dataset_is_fingerprinted_by_its_members(self, client: TestClient, factory: Factory) -> None:
        first, second = factory.tensor(), factory.tensor()
        dataset = factory.dataset(tensors={"features": first, "labels": second})
        officer = factory.user(OFFICER)
        filed = _ask_access(client, factory.user(), dataset, "dataset")
        digest = fingerprints.dataset_digest([("labels", _sha256_of(factory, second)),
                                              ("features", _sha256_of(factory, first))])
        assert _show(client, officer, filed["id"])["payload"]["fingerprint"] == fingerprints.fingerprint(
            _state_dir(client), target_type="dataset", sha256=digest)
        assert fingerprints.dataset_digest([("features", _sha256_of(factory, second)),
                                            ("labels", _sha256_of(factory, first))]) != digest

    def test_an_unchanged_target_is_granted(self, client: TestClient, factory: Factory) -> None:
        scientist, officer = factory.user(), factory.user(OFFICER)
        tensor = factory.tensor()
        filed = _ask_access(client, scientist, tensor)
        response = approve(client, officer, filed["id"])
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "approved"
        assert _grants_of(factory, scientist) == [("tensor", tensor, "download")]

    def test_a_tensor_whose_data_changed_is_never_granted(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        scientist, officer = any_db_factory.user(), any_db_factory.user(OFFICER)
        tensor = any_db_factory.tensor()
        filed = _ask_access(any_db_client, scientist, tensor)
        with any_db_factory.sessions.begin() as session:  # other data under the same id (say, a reused one)
            session.execute(update(Tensor).where(Tensor.id == tensor).values(sha256="e" * 64))
        refused = approve(any_db_client, officer, filed["id"])
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["code"] == "conflict"
        assert body["details"] == {"request_id": filed["id"], "state": "expired", "rule": "target_changed"}
        assert f"tensor {tensor} changed since the request was filed" in body["message"]
        assert _grants_of(any_db_factory, scientist) == []
        seen = _show(any_db_client, scientist, filed["id"])
        assert seen["state"] == "expired"
        assert [(e["from_state"], e["to_state"]) for e in seen["events"]] == [(None, "pending"), ("pending", "expired")]
        assert f"tensor {tensor} changed" in seen["events"][-1]["note"]
        again = approve(any_db_client, officer, filed["id"])
        assert again.status_code == 409 and "already expired" in again.json()["message"]
        assert _grants_of(any_db_factory, scientist) == []

    def test_a_dataset_whose_member_was_replaced_is_never_granted(self, client: TestClient,
                                                                   factory: Factory) -> None:
        owner, scientist, officer = factory.owner(), factory.user(), factory.user(OFFICER)
        features, other = factory.tensor(), factory.tensor()
        dataset = factory.dataset(tensors={"features": features})
        filed = _ask_access(client, scientist, dataset, "dataset")
        edited = client.patch(f"{API}/datasets/{dataset}", headers=owner.headers, json={"description": "v2"})
        assert edited.status_code == 200, edited.text  # metadata is not the data: no effect on the fingerprint
        replaced = client.put(f"{API}/datasets/{dataset}/members/features", headers=owner.headers,
                              json={"tensor_id": other})
        assert replaced.status_code == 200, replaced.text
        refused = approve(client, officer, filed["id"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["details"]["rule"] == "target_changed"
        assert _grants_of(factory, scientist) == []
        assert _show(client, scientist, filed["id"])["state"] == "expired"

    def test_a_dataset_edited_only_in_its_metadata_is_granted(self, client: TestClient, factory: Factory) -> None:
        owner, scientist, officer = factory.owner(), factory.user(), factory.user(OFFICER)
        dataset = factory.dataset(tensors={"features": factory.tensor()})
        filed = _ask_access(client, scientist, dataset, "dataset")
        assert client.patch(f"{API}/datasets/{dataset}", headers=owner.headers,
                            json={"description": "better words"}).status_code == 200
        assert approve(client, officer, filed["id"]).status_code == 200
        assert _grants_of(factory, scientist) == [("dataset", dataset, "download")]

    def test_a_target_gone_without_its_requests_being_cancelled_is_refused(
        self, client: TestClient, factory: Factory
    ) -> None:
        scientist, officer = factory.user(), factory.user(OFFICER)
        tensor = factory.tensor()
        filed = _ask_access(client, scientist, tensor)
        with factory.sessions.begin() as session:  # removed behind the service's back (an older Node's doing)
            row = session.get(Tensor, tensor)
            assert row is not None
            session.delete(row)
        refused = approve(client, officer, filed["id"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["details"]["rule"] == "target_deleted"
        assert f"tensor {tensor} no longer exists" in refused.json()["message"]
        assert _show(client, scientist, filed["id"])["state"] == "expired"
        assert _grants_of(factory, scientist) == []

    def test_a_data_scientist_cannot_cancel_a_stale_request_by_approving_it(
        self, client: TestClient, factory: Factory
    ) -> None:
        scientist, stranger = factory.user(), factory.user()
        tensor = factory.tensor()
        filed = _ask_access(client, scientist, tensor)
        with factory.sessions.begin() as session:
            session.execute(update(Tensor).where(Tensor.id == tensor).values(sha256="d" * 64))
        for who in (stranger, scientist):
            assert approve(client, who, filed["id"]).status_code == 403
        assert _show(client, scientist, filed["id"])["state"] == "pending"


# --- deleting a target -------------------------------------------------------------------------------------


class TestDeletedTargets:
    def test_deleting_a_tensor_cancels_its_pending_requests_of_every_kind_and_its_id_stays_dead(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner, officer = any_db_factory.owner(), any_db_factory.user(OFFICER)
        asker, releaser = any_db_factory.user(), any_db_factory.user(budget=5.0)
        assert any_db_client.patch(f"{API}/privacy/settings", headers=owner.headers,
                                   json={"release_policy": "allow_non_private"}).status_code == 200
        tensor = any_db_factory.tensor()
        access = _ask_access(any_db_client, asker, tensor)
        filed_release = release(any_db_client, releaser, tensor, "tensor")
        assert filed_release.status_code == 201 and filed_release.json()["state"] == "pending", filed_release.text
        budget = any_db_client.post(f"{API}/requests", headers=asker.headers,
                                    json={"kind": "budget", "epsilon": 1.0, "reason": "more"}).json()
        assert any_db_client.delete(f"{API}/tensors/{tensor}", headers=owner.headers).status_code == 204
        for request_id, who in ((access["id"], asker), (filed_release.json()["id"], releaser)):
            seen = _show(any_db_client, who, request_id)
            assert seen["state"] == "expired"
            assert seen["events"][-1]["note"] == f"the tensor {tensor} was deleted before a decision"
            refused = approve(any_db_client, officer, request_id)
            assert refused.status_code == 409 and "already expired" in refused.json()["message"]
        assert _show(any_db_client, asker, budget["id"])["state"] == "pending"  # not about the tensor
        successor = any_db_factory.tensor()
        assert successor > tensor  # the deleted id is never handed out again
        assert _grants_of(any_db_factory, asker) == []

    def test_deleting_a_dataset_cancels_its_pending_requests(self, client: TestClient, factory: Factory) -> None:
        owner, scientist = factory.owner(), factory.user()
        dataset = factory.dataset(tensors={"features": factory.tensor()})
        filed = _ask_access(client, scientist, dataset, "dataset")
        assert client.delete(f"{API}/datasets/{dataset}", headers=owner.headers).status_code == 204
        seen = _show(client, scientist, filed["id"])
        assert seen["state"] == "expired"
        assert seen["events"][-1]["note"] == f"the dataset {dataset} was deleted before a decision"
        assert factory.dataset() > dataset


class TestIdsAreNeverReused:
    def test_the_newest_rows_ids_are_not_handed_out_again(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        tensor = any_db_factory.tensor()
        assert any_db_client.delete(f"{API}/tensors/{tensor}", headers=owner.headers).status_code == 204
        assert any_db_factory.count(Tensor) == 0
        assert any_db_factory.tensor() == tensor + 1

        leaving = any_db_factory.user()
        request = _ask_access(any_db_client, leaving, any_db_factory.tensor())
        assert any_db_client.delete(f"{API}/users/{leaving.id}", headers=owner.headers).status_code == 204
        assert any_db_factory.count(Request) == 0  # went with its requester, the newest row of its table
        newcomer = any_db_factory.user()
        assert newcomer.id > leaving.id
        assert _ask_access(any_db_client, newcomer, any_db_factory.tensor())["id"] == request["id"] + 1


# --- existence is never revealed ---------------------------------------------------------------------------


def _answer(response: Any, object_id: int) -> tuple[int, str]:
    """Status and body, with the id asked about written as ``<id>`` (the only part allowed to differ)."""
    return response.status_code, re.sub(rf"\b{object_id}\b", "<id>", json.dumps(response.json(), sort_keys=True))


def _alike(hidden: Any, hidden_id: int, missing: Any, missing_id: int) -> tuple[int, str]:
    assert _answer(hidden, hidden_id) == _answer(missing, missing_id), (hidden.text, missing.text)
    return _answer(hidden, hidden_id)


MISSING = 987_654


class TestExistenceIsNotRevealed:
    @pytest.fixture
    def world(self, client: TestClient, factory: Factory) -> dict[str, Any]:
        alice, bob = factory.user(budget=10.0), factory.user()
        filed = _ask_access(client, alice, factory.tensor())
        budget = client.post(f"{API}/requests", headers=alice.headers,
                             json={"kind": "budget", "epsilon": 1.0, "reason": "more"}).json()
        return {"alice": alice, "bob": bob, "access": filed["id"], "budget": budget["id"]}

    def test_showing_someone_elses_request_is_a_404_like_a_missing_one(
        self, client: TestClient, factory: Factory, world: dict[str, Any]
    ) -> None:
        bob, request_id = world["bob"], world["access"]
        status, _ = _alike(client.get(f"{API}/requests/{request_id}", headers=bob.headers), request_id,
                           client.get(f"{API}/requests/{MISSING}", headers=bob.headers), MISSING)
        assert status == 404
        triager = factory.user(capabilities={Capability.triage_requests})  # does not decide budget requests
        status, _ = _alike(client.get(f"{API}/requests/{world['budget']}", headers=triager.headers), world["budget"],
                           client.get(f"{API}/requests/{MISSING}", headers=triager.headers), MISSING)
        assert status == 404
        assert client.get(f"{API}/requests/{request_id}", headers=world["alice"].headers).status_code == 200

    def test_withdrawing_someone_elses_request_is_a_404_and_changes_nothing(
        self, client: TestClient, factory: Factory, world: dict[str, Any]
    ) -> None:
        bob, request_id = world["bob"], world["access"]
        before = factory.snapshot()
        status, _ = _alike(client.post(f"{API}/requests/{request_id}/withdraw", headers=bob.headers), request_id,
                           client.post(f"{API}/requests/{MISSING}/withdraw", headers=bob.headers), MISSING)
        assert status == 404
        assert factory.snapshot() == before
        officer = client.post(f"{API}/requests/{request_id}/withdraw", headers=factory.user(OFFICER).headers)
        assert officer.status_code == 403 and "only the requester" in officer.json()["message"]  # they see it

    @pytest.mark.parametrize("verb", ["approve", "deny"])
    def test_deciding_without_the_capability_answers_alike_whether_the_request_exists(
        self, client: TestClient, factory: Factory, world: dict[str, Any], verb: str
    ) -> None:
        body = {"reason": "no"} if verb == "deny" else None
        bob = world["bob"]
        budgets_only = factory.user(capabilities={Capability.manage_budgets})
        triage_only = factory.user(capabilities={Capability.triage_requests})
        cases = [(bob, world["access"], "triage_requests"), (bob, world["budget"], "manage_budgets"),
                 (budgets_only, world["access"], "triage_requests"), (triage_only, world["budget"], "manage_budgets")]
        before = factory.snapshot()
        for who, request_id, capability in cases:
            hidden = client.post(f"{API}/requests/{request_id}/{verb}", headers=who.headers, json=body)
            missing = client.post(f"{API}/requests/{MISSING}/{verb}", headers=who.headers, json=body)
            status, _ = _alike(hidden, request_id, missing, MISSING)
            assert status == 403 and capability in hidden.json()["message"]
            assert hidden.json()["code"] == "forbidden"
        assert factory.snapshot() == before
        officer = factory.user(OFFICER)
        assert client.post(f"{API}/requests/{MISSING}/{verb}", headers=officer.headers,
                           json=body).status_code == 404  # sees every kind: "missing" tells them nothing new

    def test_downloading_someone_elses_release_is_a_404_like_a_missing_one(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner, bob, officer = factory.user(budget=10.0), factory.user(), factory.user(OFFICER)
        result = make_result(factory, owner.id, event=dp_event(), blob=b"weights")
        request_id = release(client, owner, result).json()["id"]
        assert approve(client, officer, request_id).status_code == 200
        status, _ = _alike(client.get(f"{API}/releases/{request_id}/data", headers=bob.headers), request_id,
                           client.get(f"{API}/releases/{MISSING}/data", headers=bob.headers), MISSING)
        assert status == 404
        assert client.get(f"{API}/releases/{request_id}/data", headers=officer.headers).status_code == 403
        assert client.get(f"{API}/releases/{request_id}/data", headers=owner.headers).content == b"weights"

    def test_results_and_jobs_of_others_answer_like_missing_ones(self, client: TestClient, factory: Factory) -> None:
        owner, bob = factory.user(budget=10.0), factory.user()
        result = make_result(factory, owner.id, event=dp_event())
        with factory.sessions() as session:
            job = session.scalar(select(Job.id).order_by(Job.id.desc()))
        assert job is not None
        for hidden_path, missing_path, object_id in (
            (f"/results/{result}", f"/results/{MISSING}", result),
            (f"/results/{result}/data", f"/results/{MISSING}/data", result),
            (f"/jobs/{job}", f"/jobs/{MISSING}", job),
        ):
            status, _ = _alike(client.get(API + hidden_path, headers=bob.headers), object_id,
                               client.get(API + missing_path, headers=bob.headers), MISSING)
            assert status == 404, hidden_path
        status, _ = _alike(client.post(f"{API}/jobs/{job}/cancel", headers=bob.headers), job,
                           client.post(f"{API}/jobs/{MISSING}/cancel", headers=bob.headers), MISSING)
        assert status == 404
        status, _ = _alike(release(client, bob, result), result, release(client, bob, MISSING), MISSING)
        assert status == 403  # asking for the release of a result that is not yours, or of none
        assert factory.count(Request) == 0
        officer = factory.user(OFFICER)
        assert release(client, officer, MISSING).status_code == 404  # officers see every result

    def test_naming_a_user_answers_alike_whether_they_exist(self, client: TestClient, factory: Factory) -> None:
        scientist, other = factory.user(), factory.user()
        absent = f"nobody-{MISSING}@example.com"
        for hidden, missing in ((other.email, absent), (str(other.id), str(MISSING))):
            listed = [client.get(f"{API}/requests", headers=scientist.headers, params={"requester": ref})
                      for ref in (hidden, missing)]
            assert listed[0].status_code == 403
            assert listed[0].json() == listed[1].json()
            allowed = [client.put(f"{API}/budget/users/{ref}/non-private", headers=scientist.headers,
                                  json={"allowed": True}) for ref in (hidden, missing)]
            assert allowed[0].status_code == 403
            assert allowed[0].json() == allowed[1].json()
            shown = [client.get(f"{API}/users/{ref}", headers=scientist.headers) for ref in (hidden, missing)]
            assert shown[0].status_code == 403 and shown[0].json() == shown[1].json()
        mine = client.get(f"{API}/requests", headers=scientist.headers, params={"requester": scientist.email})
        assert mine.status_code == 200
