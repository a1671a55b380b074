"""Who may download a result and who may ask for its release; the officer's cost card, what a release charges, and
what downloading a release answers, figure by figure and word by word. Written to kill the mutants of
grid_runtime/node/flows.py that issue 9's mutation runs found surviving: the download check's "an approved release
of exactly this artifact", the rule that only the user who ran a job may ask for its result's release, a card
field renamed or computed otherwise, a charge recorded without its dataset or tensor, an error without its reason.
Everything runs through the API as an officer, a requester or a bystander would, except one admission with initial
weights, which needs a Node that runs Workers (``tests.test_admission.workers_on``).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import InvalidInput
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node import flows
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.jobs.schemas import TrainIn
from grid_runtime.node.notifications import service as notifications
from grid_runtime.node.requests.models import Request
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.privacy import accounting, events
from tests.factories import Factory, MadeUser
from tests.test_admission import _actor, _column, _count, _grant, workers_on  # noqa: F401 (a fixture)
from tests.test_release_requests import SPEC, approve, dp_event, ledger_rows, make_result, release

API = "/api/v1"
ORDER, DELTA = accounting.DEFAULT_RDP_ORDER, accounting.DEFAULT_DELTA


def _rdp(event: dict[str, Any]) -> float:
    return accounting.rdp_at_order(events.event_from_dict(event), ORDER)


def _eps(rdp: float) -> float:
    return accounting.epsilon_from_rdp(rdp, ORDER, DELTA)


def _left(cap: float, rdp: float) -> float:
    return accounting.epsilon_from_rdp(accounting.rdp_budget(cap, DELTA, ORDER) - rdp, ORDER, DELTA)


def _card(client: TestClient, officer: MadeUser, request_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/requests/{request_id}", headers=officer.headers)
    assert response.status_code == 200, response.text
    card: dict[str, Any] = response.json()["card"]
    return card


def _allow_non_private_releases(client: TestClient, factory: Factory) -> None:
    response = client.patch(f"{API}/privacy/settings", headers=factory.owner().headers,
                            json={"release_policy": "allow_non_private"})
    assert response.status_code == 200, response.text


@pytest.fixture
def officer(factory: Factory) -> MadeUser:
    return factory.user("Compliance Officer")


class TestTheCardsFigures:
    def test_the_users_side_before_and_after_this_release(self, client: TestClient, factory: Factory,
                                                          officer: MadeUser) -> None:
        first_event, second_event = dp_event(1.5), dp_event()
        user = factory.user(budget=10.0)
        column = _column(factory)
        first = release(client, user, make_result(factory, user.id, event=first_event)).json()
        approve(client, officer, first["id"])
        second = release(client, user, make_result(
            factory, user.id, event=second_event,
            inputs={"features": {"tensor_id": column, "shape": [200, 4]}})).json()  # type: ignore[dict-item]
        card = _card(client, officer, second["id"])
        before, this = _rdp(first_event), _rdp(second_event)
        assert card["user"]["cap_epsilon"] == 10.0
        assert card["user"]["epsilon_before"] == pytest.approx(_eps(before), rel=1e-9)
        assert card["user"]["epsilon_after"] == pytest.approx(_eps(before + this), rel=1e-9)
        assert card["user"]["simple_sum_before"] == pytest.approx(first["payload"]["epsilon"], rel=1e-9)
        assert card["user"]["simple_sum_after"] == pytest.approx(
            first["payload"]["epsilon"] + second["payload"]["epsilon"], rel=1e-9)
        assert card["user"]["remaining_before"] == pytest.approx(_left(10.0, before), rel=1e-9)
        assert card["user"]["remaining_after"] == pytest.approx(_left(10.0, before + this), rel=1e-9)
        assert (card["user"]["events"], card["user"]["non_private_events"]) == (1, 0)
        assert card["user"]["within_cap"] is True
        assert (card["delta"], card["rows"]) == (DELTA, 200)
        assert card["delta_times_rows"] == pytest.approx(200 * DELTA)
        assert card["flag"] is None and card["non_private"] is False

    def test_a_release_that_ends_above_the_cap_by_less_than_one_is_not_within_it(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        event = dp_event()
        both = _eps(2 * _rdp(event))
        user = factory.user(budget=both - 0.05)  # both paid at admission: the second ends 0.05 above the cap
        first = release(client, user, make_result(factory, user.id, event=event, blob=b"one")).json()
        approve(client, officer, first["id"])
        second = release(client, user, make_result(factory, user.id, event=event, blob=b"two")).json()
        card = _card(client, officer, second["id"])
        assert card["user"]["epsilon_after"] == pytest.approx(both, rel=1e-9)
        assert card["user"]["within_cap"] is False

    def test_a_release_that_ends_exactly_at_the_cap_is_within_it(self, client: TestClient, factory: Factory,
                                                                  officer: MadeUser) -> None:
        event = dp_event()
        both = _eps(2 * _rdp(event))  # the very figure the card computes: the cap is spent to the last bit
        user = factory.user(budget=both)
        first = release(client, user, make_result(factory, user.id, event=event, blob=b"one")).json()
        approve(client, officer, first["id"])
        second = release(client, user, make_result(factory, user.id, event=event, blob=b"two")).json()
        card = _card(client, officer, second["id"])
        assert card["user"]["epsilon_after"] == both
        assert card["user"]["within_cap"] is True

    def test_something_not_differentially_private_is_flagged_and_has_no_finite_figure(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        _allow_non_private_releases(client, factory)
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=None)).json()
        assert filed["state"] == "pending", filed
        card = _card(client, officer, filed["id"])
        assert card["flag"] == ("NOT DIFFERENTIALLY PRIVATE: releasing it may reveal anything about the rows it was "
                                "computed from; it is never auto-approved")
        assert card["non_private"] is True and card["epsilon"] is None and card["rdp"] is None
        assert card["user"]["epsilon_after"] is None and card["user"]["simple_sum_after"] is None
        assert card["user"]["remaining_after"] is None and card["user"]["within_cap"] is False
        assert card["user"]["epsilon_before"] == 0 and card["user"]["events"] == 0
        assert card["user"]["non_private_events"] == 0  # its own (admission) event is not "before"

    def test_after_approval_an_unpaid_release_shows_before_without_its_own_charge(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event(), charged=False)).json()
        assert filed["payload"]["paid"] is False
        assert approve(client, officer, filed["id"]).status_code == 200
        [charge] = ledger_rows(factory)
        assert charge.request_id == filed["id"]
        card = _card(client, officer, filed["id"])
        assert card["user"]["epsilon_before"] == 0 and card["user"]["events"] == 0
        assert card["user"]["epsilon_after"] == pytest.approx(_eps(_rdp(dp_event())), rel=1e-9)


CARD_FIELDS = {"mechanism", "non_private", "flag", "paid_at_admission", "epsilon", "delta", "rows", "delta_times_rows",
               "rdp_order", "rdp", "fingerprint", "release_policy", "user", "dataset", "datasets", "settings", "layers",
               "metrics", "reading", "reading_epsilon", "history"}
USER_FIELDS = {"id", "email", "ceiling_epsilon", "cap_epsilon", "epsilon_before", "epsilon_after", "simple_sum_before",
               "simple_sum_after", "remaining_before", "remaining_after", "events", "non_private_events", "within_cap"}


def _two_datasets(client: TestClient, factory: Factory, officer: MadeUser) -> tuple[int, int, int]:
    """A column held by dataset A (cap 4, one row per person) and dataset B (no cap): (column, A, B), A < B."""
    column = _column(factory)
    a = factory.dataset("card-a", tensors={"x": column})
    b = factory.dataset("card-b", tensors={"x": column})
    with factory.sessions.begin() as session:
        session.execute(update(Dataset).where(Dataset.id == a).values(one_row_per_person=True))
    assert client.put(f"{API}/budget/datasets/{a}", headers=officer.headers, json={"epsilon": 4.0}).status_code == 200
    return column, a, b


class TestTheCardsShape:
    def test_a_tensors_card_has_every_field_and_a_line_for_each_dataset_holding_it(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        _allow_non_private_releases(client, factory)
        column, a, b = _two_datasets(client, factory, officer)
        user = factory.user(budget=10.0)
        assert make_result(factory, user.id, event=dp_event()) == column  # a result with the tensor's id exists
        filed = release(client, user, column, target_type="tensor").json()
        card = _card(client, officer, filed["id"])
        assert set(card) == CARD_FIELDS  # no job: no settings, layers, metrics, officer-only figures
        assert (card["settings"], card["layers"], card["metrics"]) == (None, None, None)
        assert set(card["user"]) == USER_FIELDS
        assert (card["user"]["id"], card["user"]["email"]) == (user.id, user.email)
        assert (card["rdp_order"], card["rdp"], card["release_policy"]) == (ORDER, None, "allow_non_private")
        assert card["datasets"] == [
            {"id": a, "name": "card-a", "cap_epsilon": 4.0, "one_row_per_person": True, "epsilon_before": 0.0,
             "epsilon_after": None, "remaining_before": 4.0, "remaining_after": None, "events": 0},
            {"id": b, "name": "card-b", "cap_epsilon": None, "one_row_per_person": False, "epsilon_before": 0.0,
             "epsilon_after": None, "remaining_before": None, "remaining_after": None, "events": 0},
        ]
        assert card["dataset"] == card["datasets"][0]  # the tensor's first dataset

    def test_a_results_card_leads_with_its_jobs_dataset_and_shows_each_datasets_figures(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        column, a, b = _two_datasets(client, factory, officer)
        user = factory.user(budget=10.0)
        event = dp_event()
        result = make_result(factory, user.id, event=event, dataset=b, charged=False,
                             inputs={"features": {"tensor_id": column}})  # type: ignore[dict-item]
        filed = release(client, user, result).json()
        assert filed["payload"]["dataset_ids"] == [a, b] and filed["payload"]["dataset_id"] == b
        card = _card(client, officer, filed["id"])
        assert set(card) == CARD_FIELDS | {"officer_only"}
        after = _eps(_rdp(event))
        assert [d["id"] for d in card["datasets"]] == [a, b]
        assert card["datasets"][0]["remaining_after"] == pytest.approx(_left(4.0, _rdp(event)), rel=1e-9)
        assert card["datasets"][0]["epsilon_after"] == pytest.approx(after, rel=1e-9)
        assert card["datasets"][1]["remaining_after"] is None
        assert card["dataset"]["id"] == b  # the job's dataset, not the first one
        assert card["rdp"] == pytest.approx(_rdp(event), rel=1e-9)

    def test_a_card_of_a_request_filed_before_dataset_ids_names_its_one_dataset(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        column, a, _b = _two_datasets(client, factory, officer)
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event(), dataset=a)).json()
        with factory.sessions.begin() as session:
            row = session.get(Request, filed["id"])
            assert row is not None
            row.payload = {k: v for k, v in row.payload.items() if k != "dataset_ids"}
        card = _card(client, officer, filed["id"])
        assert [d["id"] for d in card["datasets"]] == [a] and card["dataset"]["id"] == a

    def test_a_dataset_gone_since_the_filing_has_no_name(self, client: TestClient, factory: Factory,
                                                        officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        with factory.sessions.begin() as session:
            row = session.get(Request, filed["id"])
            assert row is not None
            row.payload = {**row.payload, "dataset_ids": [999_999], "dataset_id": 999_999}
        card = _card(client, officer, filed["id"])
        [gone] = card["datasets"]
        assert (gone["id"], gone["name"], gone["one_row_per_person"]) == (999_999, None, False)


    def test_a_payload_whose_dataset_is_not_among_its_datasets_leads_with_the_first(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        column, a, b = _two_datasets(client, factory, officer)
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event(), dataset=b, charged=False,
                                                  inputs={"x": {"tensor_id": column}})).json()  # type: ignore[dict-item]
        with factory.sessions.begin() as session:
            row = session.get(Request, filed["id"])
            assert row is not None
            row.payload = {**row.payload, "dataset_id": None}
        card = _card(client, officer, filed["id"])
        assert [d["id"] for d in card["datasets"]] == [a, b] and card["dataset"]["id"] == a

    def test_the_card_of_a_result_deleted_since_has_no_job_settings(self, client: TestClient, factory: Factory,
                                                                    officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        filed = release(client, user, result).json()
        with factory.sessions.begin() as session:
            session.delete(session.get(Result, result))
        card = _card(client, officer, filed["id"])
        assert (card["settings"], card["layers"], card["metrics"]) == (None, None, None)
        assert "officer_only" not in card


class TestTheCardsJobAndHistory:
    def test_the_jobs_settings_and_officer_only_figures_are_on_the_card(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), metrics=[{"epoch": 1, "loss": 0.5}])
        with factory.sessions.begin() as session:
            row = session.get(Result, result)
            assert row is not None
            row.lineage = {**row.lineage, "officer_only": {"zeroed_samples": 3}}
            job_id = row.job_id
        card = _card(client, officer, release(client, user, result).json()["id"])
        assert card["settings"] == {"job_id": job_id, "kind": "train", "inputs": {}, "epochs": 1, "batch_size": 8,
                                    "dp": {"noise_multiplier": 1.0}}
        assert card["officer_only"] == {"zeroed_samples": 3}
        assert card["metrics"] == [{"epoch": 1, "loss": 0.5}]

    def test_a_spec_that_no_longer_parses_shows_no_layers(self, client: TestClient, factory: Factory,
                                                          officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        with factory.sessions.begin() as session:
            row = session.get(Result, result)
            assert row is not None
            job = session.get(Job, row.job_id)
            assert job is not None
            job.spec = {"format": "gridctl.model-spec/1", "layers": [{"type": "NoSuchLayer"}]}
        card = _card(client, officer, release(client, user, result).json()["id"])
        assert "layers" in card and card["layers"] is None
        assert set(card) == CARD_FIELDS | {"officer_only"}

    def test_the_history_is_the_requesters_own_newest_first_and_bounded(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user, other = factory.user(budget=100.0), factory.user(budget=100.0)
        earlier = [release(client, user, make_result(factory, user.id, event=dp_event(), blob=f"r{i}".encode())).json()
                   for i in range(flows.HISTORY_LIMIT + 1)]
        client.post(f"{API}/requests/{earlier[-1]['id']}/deny", headers=officer.headers, json={"reason": "no"})
        release(client, other, make_result(factory, other.id, event=dp_event(), blob=b"theirs"))  # newer, not theirs
        filed = release(client, user, make_result(factory, user.id, event=dp_event(), blob=b"now")).json()
        history = _card(client, officer, filed["id"])["history"]
        assert [h["id"] for h in history] == [r["id"] for r in reversed(earlier)][:flows.HISTORY_LIMIT]
        newest = earlier[-1]
        assert history[0] == {
            "id": newest["id"], "kind": "release", "state": "denied", "created_at": history[0]["created_at"],
            "epsilon": pytest.approx(newest["payload"]["epsilon"]), "target_type": "result",
            "target_id": newest["target_id"], "decision_note": "no"}
        assert history[0]["created_at"].startswith(newest["created_at"][:16])


class TestWhatApprovalCharges:
    def test_an_unpaid_result_is_charged_under_its_jobs_dataset_not_the_first_holding_its_input(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        column, a, b = _two_datasets(client, factory, officer)
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), dataset=b, charged=False,
                             inputs={"features": {"tensor_id": column}})  # type: ignore[dict-item]
        filed = release(client, user, result).json()
        assert approve(client, officer, filed["id"]).status_code == 200
        [charge] = ledger_rows(factory)
        assert (charge.request_id, charge.dataset_id) == (filed["id"], b)  # b, the job's, though a < b holds it too

    def test_an_unpaid_result_is_charged_to_its_jobs_dataset_naming_the_result(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        dataset = factory.dataset("charged-on-release", tensors={"x": _column(factory)})
        result = make_result(factory, user.id, event=dp_event(), dataset=dataset, charged=False)
        filed = release(client, user, result).json()
        assert approve(client, officer, filed["id"]).status_code == 200
        [charge] = ledger_rows(factory)
        assert (charge.request_id, charge.result_id, charge.tensor_id, charge.dataset_id) == (
            filed["id"], result, None, dataset)

    def test_a_private_tensors_release_is_charged_naming_the_tensor_and_its_dataset(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        _allow_non_private_releases(client, factory)
        user = factory.user(budget=10.0)
        tensor = _column(factory)
        dataset = factory.dataset("holds-the-tensor", tensors={"x": tensor})
        filed = release(client, user, tensor, target_type="tensor").json()
        assert filed["state"] == "pending", filed
        assert approve(client, officer, filed["id"]).status_code == 200
        [charge] = ledger_rows(factory)
        assert (charge.request_id, charge.result_id, charge.tensor_id, charge.dataset_id) == (
            filed["id"], None, tensor, dataset)
        assert charge.non_private


class TestApprovingAnAccessRequest:
    def test_the_requester_gets_the_level_asked_for_and_the_officer_is_recorded(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        from grid_runtime.node.permissions.models import Grant

        user = factory.user()
        dataset = factory.dataset("asked-for-access", tensors={"x": _column(factory)})
        asked = client.post(f"{API}/requests", headers=user.headers, json={
            "kind": "access", "target_type": "dataset", "target_id": dataset, "level": "compute", "reason": "r"})
        assert asked.status_code == 201, asked.text
        decided = client.post(f"{API}/requests/{asked.json()['id']}/approve", headers=officer.headers, json={})
        assert decided.status_code == 200, decided.text
        assert (decided.json()["state"], decided.json()["decided_by"]) == ("approved", officer.id)
        with factory.sessions() as session:
            [grant] = session.scalars(select(Grant).where(Grant.user_id == user.id)).all()
        assert (grant.dataset_id, grant.level, grant.created_by) == (dataset, "compute", officer.id)


class TestDownloadingARelease:
    def test_an_officer_who_did_not_ask_may_not_download_it(self, client: TestClient, factory: Factory,
                                                            officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        approve(client, officer, filed["id"])
        refused = client.get(f"{API}/releases/{filed['id']}/data", headers=officer.headers)
        assert refused.status_code == 403
        assert refused.json()["message"] == f"only the requester of release {filed['id']} may download what it released"

    def test_an_access_request_is_not_a_release(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        dataset = factory.dataset("asked-for", tensors={"x": _column(factory)})
        asked = client.post(f"{API}/requests", headers=user.headers, json={
            "kind": "access", "target_type": "dataset", "target_id": dataset, "level": "compute",
            "reason": "to train"})
        assert asked.status_code == 201, asked.text
        refused = client.get(f"{API}/releases/{asked.json()['id']}/data", headers=user.headers)
        assert refused.status_code == 422
        assert refused.json()["message"] == f"request {asked.json()['id']} is a access request, not a release"

    def test_a_pending_release_says_so_and_nothing_more(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        refused = client.get(f"{API}/releases/{filed['id']}/data", headers=user.headers)
        assert refused.status_code == 409
        assert refused.json()["message"] == f"release request {filed['id']} is pending"
        assert refused.json()["details"] == {"request_id": filed["id"], "state": "pending", "reason": None}

    def test_a_denied_release_gives_the_officers_reason(self, client: TestClient, factory: Factory,
                                                        officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        denied = client.post(f"{API}/requests/{filed['id']}/deny", headers=officer.headers,
                             json={"reason": "too close to the cap"})
        assert denied.status_code == 200, denied.text
        refused = client.get(f"{API}/releases/{filed['id']}/data", headers=user.headers)
        assert refused.status_code == 409
        assert refused.json()["message"] == f"release request {filed['id']} is denied: too close to the cap"
        assert refused.json()["details"] == {"request_id": filed["id"], "state": "denied",
                                             "reason": "too close to the cap"}

    def test_a_result_changed_since_its_release_is_not_handed_out(self, client: TestClient, factory: Factory,
                                                                   officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), blob=b"what the officer saw")
        filed = release(client, user, result).json()
        approve(client, officer, filed["id"])
        assert client.get(f"{API}/releases/{filed['id']}/data", headers=user.headers).status_code == 200
        with factory.sessions.begin() as session:
            session.execute(update(Result).where(Result.id == result).values(sha256="0" * 64))
        refused = client.get(f"{API}/releases/{filed['id']}/data", headers=user.headers)
        assert refused.status_code == 409
        assert refused.json()["message"] == f"result {result} changed since it was released"


class TestAdmission:
    def test_a_user_the_administrators_did_not_allow_is_told_who_may(self, client: TestClient,
                                                                     factory: Factory) -> None:
        assert client.patch(f"{API}/privacy/settings", headers=factory.owner().headers,
                            json={"non_private_jobs": True}).status_code == 200
        dataset = factory.dataset("not-allowed", tensors={"features": _column(factory, width=4),
                                                          "labels": _column(factory, dtype="int64")})
        scientist = factory.user(budget=100.0)
        _grant(client, factory, scientist, dataset)
        refused = client.post(f"{API}/jobs/train", headers=scientist.headers,
                              json={"spec": SPEC, "dataset": "not-allowed", "batch_size": 10})
        assert refused.status_code == 403, refused.text
        assert refused.json()["details"] == {"rule": "non_private_user"}
        assert refused.json()["message"] == ("you are not allowed jobs without differential privacy; an administrator "
                                             "may allow you (PUT /budget/users/{you}/non-private)")

    def test_initial_weights_are_kept_in_the_object_store(self, client: TestClient, factory: Factory,
                                                          workers_on: NodeSettings) -> None:  # noqa: F811
        from safetensors.torch import save

        from grid_runtime.compute.builder import build_module

        dataset = factory.dataset("warm-start", tensors={"features": _column(factory, width=4),
                                                         "labels": _column(factory, dtype="int64")})
        scientist = factory.user(budget=100.0)
        _grant(client, factory, scientist, dataset)
        weights = save({k: v.contiguous() for k, v in build_module(SPEC).state_dict().items()})
        store = ObjectStore(workers_on.resolved_object_store_url, workers_on.object_store_options)
        with factory.sessions.begin() as session:
            job = flows.submit_training(session, actor=_actor(session, scientist.id), settings=workers_on,
                                        store=store, body=TrainIn(
                                            spec=SPEC, dataset="warm-start", batch_size=10,
                                            dp={"noise_multiplier": 5.0},  # type: ignore[arg-type]
                                            initial_weights=base64.b64encode(weights).decode()))
            kept = dict(job.settings["initial_weights"])
        assert store.exists(kept["key"])
        assert b"".join(store.iter_chunks(kept["key"])) == weights
        assert factory.count(Job) == 1


    def test_on_data_the_user_may_download_initial_weights_are_kept_and_the_submission_is_theirs(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:  # noqa: F811
        from safetensors.torch import save

        from grid_runtime.compute.builder import build_module
        from grid_runtime.node.audit.models import AuditEvent

        dataset = factory.dataset("downloadable", tensors={"features": _column(factory, width=4),
                                                           "labels": _column(factory, dtype="int64")})
        scientist = factory.user()
        _grant(client, factory, scientist, dataset, "download")
        weights = save({k: v.contiguous() for k, v in build_module(SPEC).state_dict().items()})
        store = ObjectStore(workers_on.resolved_object_store_url, workers_on.object_store_options)
        with factory.sessions.begin() as session:
            job = flows.submit_training(session, actor=_actor(session, scientist.id), settings=workers_on,
                                        store=store, body=TrainIn(spec=SPEC, dataset="downloadable", batch_size=10,
                                                                  initial_weights=base64.b64encode(weights).decode()))
            kept, job_id = dict(job.settings["initial_weights"]), job.id
        assert b"".join(store.iter_chunks(kept["key"])) == weights
        with factory.sessions() as session:
            [entry] = session.scalars(select(AuditEvent).where(AuditEvent.action == "job.submitted")).all()
        assert (entry.actor_id, entry.target_id) == (scientist.id, str(job_id))
        assert ledger_rows(factory) == []


    def test_a_private_job_is_submitted_by_its_user_and_a_refusal_says_it_was_not_admitted(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:  # noqa: F811
        from grid_runtime.node.audit.models import AuditEvent

        dataset = factory.dataset("counted", tensors={"x": _column(factory)})
        scientist = factory.user(budget=10.0)
        _grant(client, factory, scientist, dataset)
        job = _count(factory, scientist, "counted", 0.5, workers_on)
        with factory.sessions() as session:
            [entry] = session.scalars(select(AuditEvent).where(AuditEvent.action == "job.submitted")).all()
        assert (entry.actor_id, entry.target_id) == (scientist.id, str(job.id))
        with pytest.raises(flows.BudgetExceeded) as refused:
            _count(factory, scientist, "counted", 30.0, workers_on)
        assert refused.value.message.startswith("this job cannot be admitted: ")


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


def _policy(client: TestClient, officer: MadeUser, **body: Any) -> int:
    created = client.post(f"{API}/release-policies", headers=officer.headers, json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


class TestFilingARelease:
    def test_an_overdue_pending_request_expires_before_another_is_filed(self, client: TestClient,
                                                                        factory: Factory) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        first = release(client, user, result).json()
        with factory.sessions.begin() as session:
            session.execute(update(Request).where(Request.id == first["id"])
                            .values(expires_at=utcnow() - timedelta(minutes=1)))
        again = release(client, user, result)
        assert again.status_code == 201, again.text
        assert client.get(f"{API}/requests/{first['id']}", headers=user.headers).json()["state"] == "expired"

    def test_a_pending_request_expires_after_the_nodes_time_to_live(self, client: TestClient,
                                                                    factory: Factory) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        ttl = client.app.state.settings.request_ttl_seconds  # type: ignore[attr-defined]
        created = datetime.fromisoformat(filed["created_at"])
        expires = datetime.fromisoformat(filed["expires_at"])
        assert abs((expires - created).total_seconds() - ttl) < 5

    def test_a_user_who_may_download_the_inputs_needs_no_release(self, client: TestClient,
                                                                 factory: Factory) -> None:
        user = factory.user(budget=10.0)
        column = _column(factory)
        _grant(client, factory, user, factory.dataset("theirs-to-download", tensors={"x": column}), "download")
        result = make_result(factory, user.id, event=dp_event(),
                             inputs={"x": {"tensor_id": column, "shape": [200]}})  # type: ignore[dict-item]
        refused = release(client, user, result)
        assert refused.status_code == 409, refused.text
        assert refused.json()["message"] == f"you may already download result {result}; no release is needed"
        assert refused.json()["details"] == {"target_type": "result", "target_id": result}
        tensor = release(client, user, column, target_type="tensor")
        assert tensor.status_code == 409 and tensor.json()["details"] == {"target_type": "tensor",
                                                                          "target_id": column}

    def test_a_second_request_for_what_is_pending_or_approved_names_the_first(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event())
        first = release(client, user, result).json()
        pending = release(client, user, result)
        assert pending.status_code == 409
        assert pending.json()["message"] == (f"you already have a pending release request for result {result} "
                                             f"(request {first['id']})")
        assert pending.json()["details"] == {"request_id": first["id"], "state": "pending"}
        approve(client, officer, first["id"])
        approved = release(client, user, result)
        assert approved.status_code == 409
        assert approved.json()["details"] == {"request_id": first["id"], "state": "approved"}

    def test_the_reason_is_stored_without_surrounding_blanks(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        filed = client.post(f"{API}/requests", headers=user.headers, json={
            "kind": "release", "target_type": "result", "target_id": make_result(factory, user.id, event=dp_event()),
            "reason": "  to publish the model \n"})
        assert filed.status_code == 201, filed.text
        assert filed.json()["reason"] == "to publish the model"

    def test_the_payload_carries_the_paid_cost_its_job_rows_and_the_policy(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        event = dp_event()
        a, b = _column(factory), _column(factory, rows=300)
        dataset = factory.dataset("payload", tensors={"a": a, "b": b})
        result = make_result(factory, user.id, event=event, dataset=dataset, inputs={  # type: ignore[dict-item]
            "a": {"tensor_id": a, "shape": [200, 4]}, "b": {"tensor_id": b, "shape": [300]},
            "c": {"tensor_id": a}})
        filed = release(client, user, result).json()
        with factory.sessions() as session:
            job_id = session.get(Result, result).job_id  # type: ignore[union-attr]
        seen = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["payload"]
        cost_rdp, own = _rdp(event), accounting.epsilon(events.event_from_dict(event), DELTA)
        assert seen == {
            "fingerprint": seen["fingerprint"], "dataset_id": dataset, "dataset_ids": [dataset],
            "event": event, "non_private": False, "mechanism": seen["mechanism"],
            "epsilon": pytest.approx(own, rel=1e-9), "rdp": pytest.approx(cost_rdp, rel=1e-9),
            "rdp_order": ORDER, "delta": DELTA, "paid": True, "job_id": job_id, "rows": 300,
            "release_policy": "dp_only"}
        assert len(seen["fingerprint"]) == 64 and seen["mechanism"]

    def test_something_not_differentially_private_is_refused_under_dp_only_saying_why(
            self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=None)
        filed = release(client, user, result).json()
        assert filed["state"] == "auto_denied"
        assert filed["decision_note"] == (
            f"result {result} is not differentially private, so its privacy cost is infinite; this Node's "
            "release policy (dp_only) releases only differentially private results")
        assert filed["payload"]["epsilon"] is None and filed["payload"]["non_private"] is True
        assert filed["payload"]["rdp"] is None and filed["payload"]["event"] is None
        assert filed["expires_at"] is None
        assert ledger_rows(factory)[-1].request_id is None  # only its admission's entry: nothing charged

    def test_an_unpaid_cost_past_the_budget_is_refused_with_the_filters_reason(
            self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=0.5)
        filed = release(client, user, make_result(factory, user.id, event=dp_event(0.8), charged=False)).json()
        assert filed["state"] == "auto_denied"
        assert filed["decision_note"] and "budget" in filed["decision_note"]
        refusal = filed["payload"]["refusal"]
        assert isinstance(refusal, dict) and refusal
        assert ledger_rows(factory) == []

    def test_a_policy_approves_naming_itself_and_charges_only_what_was_never_paid(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        dataset = factory.dataset("policy-covered", tensors={"x": _column(factory)})
        anywhere = _policy(client, officer, max_epsilon=1.0)
        user = factory.user(budget=10.0)
        paid = release(client, user, make_result(factory, user.id, event=dp_event(3.0))).json()
        assert paid["state"] == "auto_approved" and paid["expires_at"] is None
        assert paid["decision_note"] == f"auto-approved by release policy {anywhere} (private releases up to ε 1)"
        assert paid["payload"]["policy_id"] == anywhere
        assert [r.request_id for r in ledger_rows(factory)] == [None]  # its admission's, nothing more
        client.delete(f"{API}/release-policies/{anywhere}", headers=officer.headers)
        on_dataset = _policy(client, officer, dataset_id=dataset, max_epsilon=0.5)
        unpaid = release(client, user, make_result(factory, user.id, event=dp_event(3.0), dataset=dataset,
                                                   charged=False)).json()
        assert unpaid["decision_note"] == (f"auto-approved by release policy {on_dataset} (private releases up to "
                                           f"ε 0.5 on dataset {dataset})")
        charge = ledger_rows(factory)[-1]
        assert (charge.request_id, charge.result_id, charge.dataset_id) == (unpaid["id"], unpaid["target_id"],
                                                                            dataset)


    def test_what_is_not_differentially_private_is_stored_without_figures_and_pending_without_a_note(
            self, client: TestClient, factory: Factory) -> None:
        from grid_runtime.node.audit.models import AuditEvent

        _allow_non_private_releases(client, factory)
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=None)).json()
        assert (filed["state"], filed["decision_note"]) == ("pending", None)
        events = client.get(f"{API}/requests/{filed['id']}", headers=user.headers).json()["events"]
        assert [(e["to_state"], e["note"]) for e in events] == [("pending", None)]
        with factory.sessions() as session:
            row = session.get(Request, filed["id"])
            assert row is not None
            assert (row.payload["epsilon"], row.payload["rdp"], row.payload["event"]) == (None, None, None)
            [created] = session.scalars(select(AuditEvent).where(AuditEvent.action == "request.created")).all()
        assert (created.actor_id, created.target_id) == (user.id, str(filed["id"]))

    def test_a_result_whose_lineage_names_no_inputs_is_charged_to_its_jobs_dataset(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        dataset = factory.dataset("no-inputs-named", tensors={"x": _column(factory)})
        result = make_result(factory, user.id, event=dp_event(), dataset=dataset, charged=False)
        with factory.sessions.begin() as session:
            row = session.get(Result, result)
            assert row is not None
            row.lineage = {}
        filed = release(client, user, result)
        assert filed.status_code == 201, filed.text
        assert filed.json()["payload"]["dataset_ids"] == [dataset]


class TestApprovingARelease:
    def test_a_fingerprint_on_another_kind_of_request_is_refused(self, client: TestClient, factory: Factory,
                                                                 officer: MadeUser) -> None:
        user = factory.user()
        dataset = factory.dataset("asked", tensors={"x": _column(factory)})
        asked = client.post(f"{API}/requests", headers=user.headers, json={
            "kind": "access", "target_type": "dataset", "target_id": dataset, "level": "compute", "reason": "r"})
        refused = approve(client, officer, asked.json()["id"], fingerprint="0" * 64)
        assert refused.status_code == 422
        assert refused.json()["message"] == "a fingerprint only applies to release requests"

    def test_the_wrong_fingerprint_is_refused_naming_the_request(self, client: TestClient, factory: Factory,
                                                                 officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        filed = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        refused = approve(client, officer, filed["id"], fingerprint="ab" * 32)
        assert refused.status_code == 409
        assert refused.json()["message"] == (
            f"fingerprint {'ab' * 32} is not the one of request {filed['id']}; the artifact you inspected is not the "
            "one requested (read the fingerprint on its cost card)")
        assert refused.json()["details"] == {"request_id": filed["id"]}
        right = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["payload"]["fingerprint"]
        assert approve(client, officer, filed["id"], fingerprint=right.upper()).status_code == 200

    def test_an_artifact_gone_or_changed_since_the_filing_cannot_be_approved(
            self, client: TestClient, factory: Factory, officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        gone = release(client, user, make_result(factory, user.id, event=dp_event(), blob=b"gone")).json()
        changed = release(client, user, make_result(factory, user.id, event=dp_event(), blob=b"changed")).json()
        with factory.sessions.begin() as session:
            session.execute(update(Result).where(Result.id == changed["target_id"]).values(sha256="1" * 64))
            row = session.get(Result, gone["target_id"])
            session.delete(row)
        refused = approve(client, officer, gone["id"])
        assert refused.status_code == 409
        assert refused.json()["message"] == (f"result {gone['target_id']} no longer exists; deny request "
                                             f"{gone['id']} instead")
        assert refused.json()["details"] == {"request_id": gone["id"]}
        refused = approve(client, officer, changed["id"])
        assert refused.status_code == 409
        assert refused.json()["message"] == (f"result {changed['target_id']} changed since request {changed['id']} "
                                             "was filed; deny it and let the requester ask again")
        assert refused.json()["details"] == {"request_id": changed["id"]}


def test_a_release_is_of_a_result_or_a_tensor(factory: Factory) -> None:
    settings = factory.client.app.state.settings  # type: ignore[attr-defined]
    with factory.sessions() as session, pytest.raises(InvalidInput) as refused:
        flows.artifact(session, target_type="dataset", target_id=1, settings=settings)
    assert refused.value.message == "a release is of a result or a tensor, not 'dataset'"


class TestFingerprintsFiledBeforeTheyWereKeyed:
    """A request filed before fingerprints were HMACs recorded the artifact's plain sha256: it still counts."""

    def test_it_is_approved_downloaded_and_not_filed_twice(self, client: TestClient, factory: Factory,
                                                          officer: MadeUser) -> None:
        user = factory.user(budget=10.0)
        result = make_result(factory, user.id, event=dp_event(), blob=b"filed long ago")
        filed = release(client, user, result).json()
        with factory.sessions.begin() as session:
            row = session.get(Request, filed["id"])
            assert row is not None
            sha256 = session.get(Result, result).sha256  # type: ignore[union-attr]
            row.payload = {**row.payload, "fingerprint": sha256}
        assert approve(client, officer, filed["id"]).status_code == 200
        got = client.get(f"{API}/releases/{filed['id']}/data", headers=user.headers)
        assert got.status_code == 200 and got.content == b"filed long ago"
        again = release(client, user, result)
        assert again.status_code == 409 and again.json()["details"] == {"request_id": filed["id"],
                                                                         "state": "approved"}


def test_a_tensors_release_records_its_rows_and_keyed_fingerprint(client: TestClient, factory: Factory,
                                                                 officer: MadeUser) -> None:
    _allow_non_private_releases(client, factory)
    user = factory.user(budget=10.0)
    tensor = _column(factory, rows=321, width=2)
    filed = release(client, user, tensor, target_type="tensor").json()
    payload = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["payload"]
    assert payload["rows"] == 321 and payload["paid"] is False and payload["job_id"] is None
    with factory.sessions() as session:
        sha256 = session.get(Tensor, tensor).sha256  # type: ignore[union-attr]
    assert payload["fingerprint"] != sha256 and len(payload["fingerprint"]) == 64


class TestACardAtTheNodesOwnOrder:
    """A Node whose filter runs at another order than the default: every figure of the card is at that order."""

    @pytest.fixture
    def node_settings(self, tmp_path: Path, sqlite_url: str) -> NodeSettings:
        return NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url, rdp_order=4.0)

    def test_what_remains_after_is_at_the_nodes_order(self, client: TestClient, factory: Factory,
                                                      officer: MadeUser) -> None:
        assert ORDER != 4.0
        user = factory.user(budget=20.0)
        event = dp_event(2.0)
        filed = release(client, user, make_result(factory, user.id, event=event, charged=False)).json()
        card = _card(client, officer, filed["id"])
        rdp = accounting.rdp_at_order(events.event_from_dict(event), 4.0)
        assert card["rdp_order"] == 4.0 and card["rdp"] == pytest.approx(rdp, rel=1e-9)
        left = accounting.epsilon_from_rdp(accounting.rdp_budget(20.0, DELTA, 4.0) - rdp, 4.0, DELTA)
        assert card["user"]["remaining_after"] == pytest.approx(left, rel=1e-9)
        assert card["user"]["remaining_after"] != pytest.approx(_left(20.0, _rdp(event)), rel=1e-6)


def test_a_scalar_tensors_release_has_no_row_count(client: TestClient, factory: Factory, officer: MadeUser) -> None:
    _allow_non_private_releases(client, factory)
    user = factory.user(budget=10.0)
    tensor = factory.tensor()
    with factory.sessions.begin() as session:
        row = session.get(Tensor, tensor)
        assert row is not None
        row.shape, row.ndim, row.shape_key = [], 0, ","
    filed = release(client, user, tensor, target_type="tensor")
    assert filed.status_code == 201, filed.text
    assert filed.json()["payload"]["rows"] is None


class TestDecisionsReachTheWebhookAtTheNodesRate:
    @pytest.fixture
    def node_settings(self, tmp_path: Path, sqlite_url: str) -> NodeSettings:
        return NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url, webhook_allow_private=True,
                            webhook_max_per_minute=1)

    def test_only_as_many_decisions_a_minute_as_the_node_allows_are_sent(
            self, client: TestClient, factory: Factory, officer: MadeUser, monkeypatch: pytest.MonkeyPatch) -> None:
        from tests.test_webhooks import Receiver, configure

        monkeypatch.setattr(notifications, "RATE_LIMIT", notifications._RateLimit())  # this test's minute only
        receiver = Receiver()
        try:
            configure(client, factory, receiver.url)
            user = factory.user(budget=10.0)
            for blob in (b"first", b"second"):
                filed = release(client, user, make_result(factory, user.id, event=dp_event(), blob=blob)).json()
                assert approve(client, officer, filed["id"]).status_code == 200
            assert receiver.arrived.wait(10)
            assert len(receiver.calls) == 1
        finally:
            receiver.close()
