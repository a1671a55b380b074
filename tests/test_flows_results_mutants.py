"""What a result's page and its download tell each caller, and why a job without DP is refused, through the API:
written to kill the mutants of grid_runtime/node/flows.py's read paths (``result_out``, ``may_download``,
``download_result``, ``_check_non_private_allowed``) that no test without Ray reached (issue 9).

Results are made as a Worker's report would store them (``tests.test_release_requests.make_result``); nothing here
needs Ray.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.budget import fingerprints
from grid_runtime.node.jobs.models import Job, Result
from tests.factories import Factory, MadeUser
from tests.test_admission import _column, _grant
from tests.test_release_requests import SPEC, approve, dp_event, make_result, release

API = "/api/v1"


def _state_dir(client: TestClient) -> Path:
    return Path(client.app.state.settings.state_dir)  # type: ignore[attr-defined]


def _sha(factory: Factory, result: int) -> str:
    with factory.sessions() as session:
        row = session.get(Result, result)
        assert row is not None
        return row.sha256


def _read(client: TestClient, user: MadeUser, result: int) -> dict[str, object]:
    response = client.get(f"{API}/results/{result}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


class TestWhatTheResultPageShows:
    def test_its_owner_before_a_release_sees_the_public_fields_and_may_not_download(
            self, client: TestClient, factory: Factory) -> None:
        owner = factory.user(budget=10.0)
        result = make_result(factory, owner.id, event=dp_event())
        body = _read(client, owner, result)
        assert body["id"] == result and body["owner_id"] == owner.id
        assert body["downloadable"] is False
        assert "sha256" not in body and "fingerprint" not in body and "size_bytes" not in body

    def test_after_an_approved_release_its_owner_may_download_and_sees_the_sha256_but_no_fingerprint(
            self, client: TestClient, factory: Factory) -> None:
        owner, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        result = make_result(factory, owner.id, event=dp_event(), blob=b"weights to release")
        assert approve(client, officer, release(client, owner, result).json()["id"]).status_code == 200
        body = _read(client, owner, result)
        assert body["downloadable"] is True
        assert body["sha256"] == hashlib.sha256(b"weights to release").hexdigest()
        assert body["fingerprint"] is None

    def test_an_officer_sees_the_keyed_fingerprint_the_release_request_names(
            self, client: TestClient, factory: Factory) -> None:
        owner, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        result = make_result(factory, owner.id, event=dp_event())
        filed = release(client, owner, result).json()
        body = _read(client, officer, result)
        expected = fingerprints.fingerprint(_state_dir(client), target_type="result", sha256=_sha(factory, result))
        assert body["fingerprint"] == expected and expected != _sha(factory, result)
        request = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()
        assert request["payload"]["fingerprint"] == body["fingerprint"]
        # an officer is not the result's owner: the download decision is the owner's alone
        assert body["downloadable"] is False and body["sha256"] is None

    def test_someone_else_gets_the_answer_a_missing_result_gets(self, client: TestClient, factory: Factory) -> None:
        owner, other = factory.user(budget=10.0), factory.user(budget=10.0)
        result = make_result(factory, owner.id, event=dp_event())
        theirs = client.get(f"{API}/results/{result}", headers=other.headers)
        missing = client.get(f"{API}/results/{result + 1000}", headers=other.headers)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["message"] == f"no result with id {result}"
        assert missing.json()["message"] == f"no result with id {result + 1000}"

    def test_a_result_of_inputs_its_owner_may_download_whole_is_downloadable_without_a_release(
            self, client: TestClient, factory: Factory) -> None:
        owner = factory.user(budget=10.0)
        column = _column(factory)
        dataset = factory.dataset("theirs-whole", tensors={"x": column})
        _grant(client, factory, owner, dataset, "download")
        result = _result_of(factory, owner.id, column, blob=b"a model of downloadable data")
        assert _read(client, owner, result)["downloadable"] is True
        got = client.get(f"{API}/results/{result}/data", headers=owner.headers)
        assert got.status_code == 200 and got.content == b"a model of downloadable data"

    def test_a_compute_grant_on_its_inputs_is_not_enough(self, client: TestClient, factory: Factory) -> None:
        owner = factory.user(budget=10.0)
        column = _column(factory)
        dataset = factory.dataset("theirs-compute", tensors={"x": column})
        _grant(client, factory, owner, dataset, "compute")
        result = _result_of(factory, owner.id, column, blob=b"a model of private data")
        assert _read(client, owner, result)["downloadable"] is False
        assert client.get(f"{API}/results/{result}/data", headers=owner.headers).status_code == 403


def _result_of(factory: Factory, owner: int, tensor: int, *, blob: bytes) -> int:
    """A finished job whose lineage names ``tensor`` as its input, with ``blob`` in the object store."""
    result = make_result(factory, owner, event=dp_event(), blob=blob)
    with factory.sessions.begin() as session:
        row = session.get(Result, result)
        assert row is not None
        row.lineage = {"inputs": {"features": {"tensor_id": tensor}}}
    return result


class TestTheDownloadIsAudited:
    def test_the_audit_names_who_downloaded_what(self, client: TestClient, factory: Factory) -> None:
        owner, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        result = make_result(factory, owner.id, event=dp_event(), blob=b"audited weights")
        approve(client, officer, release(client, owner, result).json()["id"])
        assert client.get(f"{API}/results/{result}/data", headers=owner.headers).status_code == 200
        with factory.sessions() as session:
            [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "result.downloaded"))
            assert (event.actor_id, event.target_type, event.target_id) == (owner.id, "result", str(result))
            assert event.details == {"sha256": hashlib.sha256(b"audited weights").hexdigest()}


class TestJobsWithoutDP:
    def test_a_node_that_runs_none_says_which_setting_refuses_it(self, client: TestClient, factory: Factory) -> None:
        features = _column(factory, width=4)
        labels = _column(factory, dtype="int64")
        dataset = factory.dataset("no-dp", tensors={"features": features, "labels": labels})
        scientist = factory.user(budget=100.0)
        _grant(client, factory, scientist, dataset)
        refused = client.post(f"{API}/jobs/train", headers=scientist.headers,
                              json={"spec": SPEC, "dataset": "no-dp", "batch_size": 10})
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["details"] == {"rule": "non_private_jobs"}
        assert body["message"] == ("this Node runs no jobs without differential privacy (its privacy settings' "
                                   "non_private_jobs is off); give dp settings")
        assert factory.count(Job) == 0
