"""Who may download a result and who may ask for its release, through the API: written to kill the mutants of
grid_runtime/node/flows.py that issue 9 found surviving (the download check's "an approved release of exactly
this artifact" and the rule that only the user who ran a job may ask for its result's release)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grid_runtime.node.requests.models import Request
from tests.factories import Factory
from tests.test_release_requests import approve, dp_event, make_result, release

API = "/api/v1"


def test_the_owner_downloads_a_result_only_once_its_release_is_approved(client: TestClient,
                                                                        factory: Factory) -> None:
    owner, other = factory.user(budget=10.0), factory.user(budget=10.0)
    officer = factory.user("Compliance Officer")
    result = make_result(factory, owner.id, event=dp_event(), blob=b"released weights")
    assert client.get(f"{API}/results/{result}/data", headers=owner.headers).status_code == 403
    request = release(client, owner, result).json()
    assert client.get(f"{API}/results/{result}/data", headers=owner.headers).status_code == 403  # pending
    assert approve(client, officer, request["id"]).status_code == 200
    got = client.get(f"{API}/results/{result}/data", headers=owner.headers)
    assert got.status_code == 200 and got.content == b"released weights"
    assert client.get(f"{API}/results/{result}/data", headers=other.headers).status_code in (403, 404)


def test_a_release_of_one_result_does_not_open_another(client: TestClient, factory: Factory) -> None:
    owner = factory.user(budget=10.0)
    officer = factory.user("Compliance Officer")
    first = make_result(factory, owner.id, event=dp_event(), blob=b"first")
    second = make_result(factory, owner.id, event=dp_event(), blob=b"second")
    assert approve(client, officer, release(client, owner, first).json()["id"]).status_code == 200
    assert client.get(f"{API}/results/{first}/data", headers=owner.headers).status_code == 200
    assert client.get(f"{API}/results/{second}/data", headers=owner.headers).status_code == 403


def test_only_the_user_who_ran_the_job_may_ask_for_its_results_release(client: TestClient,
                                                                      factory: Factory) -> None:
    owner, other = factory.user(budget=10.0), factory.user(budget=10.0)
    officer = factory.user("Compliance Officer")
    result = make_result(factory, owner.id, event=dp_event())
    for asker in (other, officer):
        refused = release(client, asker, result)
        assert refused.status_code == 403, refused.text
        body = refused.json()
        assert body["details"]["rule"] == "result_owner"
        assert body["message"] == (f"result {result} is not yours; only the user who ran its job may ask for "
                                   "its release")
    assert factory.count(Request) == 0
    assert release(client, owner, result).status_code == 201
