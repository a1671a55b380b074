"""Privacy is charged when private data is touched (issue 9): a job's event is debited from the user's filter
and from every dataset holding one of its inputs in the transaction that admits it, or the job is refused
before any Worker sees it; jobs without DP need the node's setting and an administrator's allowance; δ fits
the data; what the owner declared is checked at admission; a release then spends nothing more.

Admission runs ``node.flows`` against a Node whose settings say it runs Workers (the test app runs none, so
the API answers 503 after every check; the flows here store the job, as the route would).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import BudgetExceeded, Forbidden, InvalidInput
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node import flows
from grid_runtime.node.budget.models import LedgerDataset, LedgerEntry
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.deps import Actor
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.jobs.schemas import StatisticsIn, TrainIn
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User
from grid_runtime.privacy import accounting, events
from tests.factories import Factory, MadeUser

API = "/api/v1"
ROWS = 200


@pytest.fixture
def workers_on(client: TestClient) -> NodeSettings:
    """The test Node's settings, as if it ran Workers."""
    settings: NodeSettings = client.app.state.settings  # type: ignore[attr-defined]
    return settings.model_copy(update={"ray_enabled": True, "job_max_concurrent": 1000, "job_max_per_day": 1000})


def _actor(session: Any, user_id: int) -> Actor:
    user = session.get(User, user_id)
    return Actor(user=user, capabilities=frozenset(Capability(c) for c in user.role.capabilities), token_id=0,
                 client_address="test")


def _column(factory: Factory, *, rows: int = ROWS, dtype: str = "float32", width: int | None = None) -> int:
    tensor = factory.tensor()
    with factory.sessions.begin() as session:
        row = session.get(Tensor, tensor)
        assert row is not None
        shape = [rows] if width is None else [rows, width]
        row.shape, row.ndim, row.dtype = shape, len(shape), dtype
        row.shape_key = "," + ",".join(map(str, shape)) + ","
    return tensor


def _grant(client: TestClient, factory: Factory, user: MadeUser, dataset: int, level: str = "compute") -> None:
    response = client.post(f"{API}/permissions", headers=factory.owner().headers, json={
        "subject_type": "user", "subject": user.id, "target_type": "dataset", "target_id": dataset,
        "level": level})
    assert response.status_code == 201, response.text


def _declare(factory: Factory, dataset: int, **values: Any) -> None:
    with factory.sessions.begin() as session:
        row = session.get(Dataset, dataset)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)


def _count(factory: Factory, user: MadeUser, dataset: str, epsilon: float, settings: NodeSettings) -> Job:
    with factory.sessions.begin() as session:
        job = flows.submit_statistics(session, actor=_actor(session, user.id), settings=settings,
                                      body=StatisticsIn(dataset=dataset, member="x", statistic="count",
                                                        epsilon=epsilon))
        session.expunge(job)
    return job


def _entries(factory: Factory) -> list[LedgerEntry]:
    with factory.sessions() as session:
        return list(session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))


def _charged_to(factory: Factory, entry_id: int) -> list[int]:
    with factory.sessions() as session:
        return sorted(session.scalars(select(LedgerDataset.dataset_id).where(LedgerDataset.entry_id == entry_id)))


@pytest.fixture
def two_datasets(client: TestClient, factory: Factory) -> Iterator[tuple[int, int, int]]:
    """A column held by dataset A (cap 2.5) and dataset B (no cap): (tensor, A, B)."""
    column = _column(factory)
    a = factory.dataset("cohort-a", tensors={"x": column})
    b = factory.dataset("cohort-b", tensors={"x": column})
    officer = factory.user("Compliance Officer")
    assert client.put(f"{API}/budget/datasets/{a}", headers=officer.headers, json={"epsilon": 2.5}).status_code == 200
    yield column, a, b


class TestChargedAtAdmission:
    def test_an_admitted_job_is_charged_to_the_user_and_every_dataset_holding_its_input(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings,
            two_datasets: tuple[int, int, int]) -> None:
        _, a, b = two_datasets
        scientist = factory.user(budget=10.0)
        _grant(client, factory, scientist, b)
        job = _count(factory, scientist, "cohort-b", 0.5, workers_on)
        [entry] = _entries(factory)
        assert entry.job_id == job.id and entry.user_id == scientist.id and entry.dataset_id == b
        assert _charged_to(factory, entry.id) == [a, b]  # caps follow the data: A is charged though B was named
        laplace = events.laplace_event(noise_multiplier=1 / 0.5)
        assert entry.epsilon == pytest.approx(accounting.epsilon(laplace, 1e-5), rel=1e-9)
        officer = factory.user("Compliance Officer")
        shown_a = client.get(f"{API}/budget/datasets/{a}", headers=officer.headers).json()
        assert shown_a["events"] == 1 and shown_a["spent_epsilon"] > 0
        mine = client.get(f"{API}/budget/ledger", headers=scientist.headers).json()["items"]
        assert mine[0]["job_id"] == job.id and mine[0]["dataset_ids"] == [a, b]

    def test_the_cap_of_a_dataset_not_named_refuses_the_job_before_it_is_stored(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings,
            two_datasets: tuple[int, int, int]) -> None:
        _, a, _ = two_datasets
        scientist = factory.user(budget=1000.0)
        _grant(client, factory, scientist, two_datasets[2])
        admitted = 0
        with pytest.raises(BudgetExceeded) as refused:
            for _ in range(20):
                _count(factory, scientist, "cohort-b", 0.3, workers_on)
                admitted += 1
        assert admitted == 3  # 3 × RDP 0.185 fits the RDP budget 0.738 of ε 2.5 at α = 6; a 4th does not
        assert refused.value.details["cap"] == "dataset" and refused.value.details["dataset_id"] == a
        assert "cannot be admitted" in refused.value.message and f"dataset {a}'s privacy cap" in refused.value.message
        assert factory.count(Job) == admitted == len(_entries(factory))
        officer = factory.user("Compliance Officer")
        spent_a = client.get(f"{API}/budget/datasets/{a}", headers=officer.headers).json()["spent_epsilon"]
        assert spent_a <= 2.5

    def test_a_job_over_the_users_budget_is_refused_with_the_reason_and_nothing_is_charged(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = factory.dataset("small", tensors={"x": _column(factory)})
        scientist = factory.user(budget=2.0)
        _grant(client, factory, scientist, dataset)
        with pytest.raises(BudgetExceeded) as refused:
            _count(factory, scientist, "small", 3.0, workers_on)
        assert refused.value.details["cap"] == "user" and "over your privacy budget" in refused.value.message
        assert factory.count(Job) == 0 and _entries(factory) == []

    def test_repeating_a_statistic_spends_the_budget_each_time(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = factory.dataset("repeat", tensors={"x": _column(factory)})
        scientist = factory.user(budget=3.0)
        _grant(client, factory, scientist, dataset)
        runs = 0
        with pytest.raises(BudgetExceeded):
            for _ in range(50):
                _count(factory, scientist, "repeat", 0.2, workers_on)
                runs += 1
        laplace_rdp = accounting.rdp_at_order(events.laplace_event(noise_multiplier=5.0), 6.0)
        assert runs == int(accounting.rdp_budget(3.0, 1e-5, 6.0) // laplace_rdp)
        shown = client.get(f"{API}/budget", headers=scientist.headers).json()
        assert shown["events"] == runs and shown["spent_epsilon"] <= 3.0
        assert shown["remaining_epsilon"] == pytest.approx(accounting.remaining_epsilon(
            runs * laplace_rdp, 3.0, 1e-5, 6.0), rel=1e-9)


class TestNonPrivateJobs:
    def _train(self, factory: Factory, user: MadeUser, settings: NodeSettings) -> Job:
        with factory.sessions.begin() as session:
            job = flows.submit_training(session, actor=_actor(session, user.id), settings=settings, store=None,  # type: ignore[arg-type]
                                        body=TrainIn(spec={"layers": [{"type": "Linear", "in_features": 3,
                                                                       "out_features": 2}]},
                                                     dataset="plain", batch_size=10))
            session.expunge(job)
        return job

    def _plain(self, factory: Factory) -> int:
        return factory.dataset("plain", tensors={"features": _column(factory, width=3),
                                                 "labels": _column(factory, dtype="int64")})

    def test_refused_unless_the_node_allows_them_and_an_administrator_allowed_the_user(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = self._plain(factory)
        owner, admin, scientist = factory.owner(), factory.user("Administrator"), factory.user(budget=100.0)
        _grant(client, factory, scientist, dataset)
        with pytest.raises(Forbidden) as node_off:
            self._train(factory, scientist, workers_on)
        assert node_off.value.details["rule"] == "non_private_jobs"
        assert client.patch(f"{API}/privacy/settings", headers=owner.headers,
                            json={"non_private_jobs": True}).json()["non_private_jobs"] is True
        with pytest.raises(Forbidden) as user_off:
            self._train(factory, scientist, workers_on)
        assert user_off.value.details["rule"] == "non_private_user"
        own = client.put(f"{API}/budget/users/{admin.id}/non-private", headers=admin.headers, json={"allowed": True})
        assert own.status_code == 403 and own.json()["details"]["rule"] == "own_allowance"
        refused = client.put(f"{API}/budget/users/{scientist.id}/non-private", headers=factory.user().headers,
                             json={"allowed": True})
        assert refused.status_code == 403
        allowed = client.put(f"{API}/budget/users/{scientist.id}/non-private", headers=admin.headers,
                             json={"allowed": True})
        assert allowed.status_code == 200 and allowed.json()["allowed"] is True
        assert "user.non_private_jobs_set" in factory.audit_actions()
        assert client.get(f"{API}/budget", headers=scientist.headers).json()["non_private_jobs_allowed"] is True
        job = self._train(factory, scientist, workers_on)
        [entry] = _entries(factory)
        assert entry.job_id == job.id and entry.non_private and entry.epsilon is None
        assert client.get(f"{API}/budget", headers=scientist.headers).json()["non_private_releases"] == 1

    def test_on_data_the_user_may_download_whole_it_needs_no_allowance_and_charges_nothing(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = self._plain(factory)
        scientist = factory.user()
        _grant(client, factory, scientist, dataset, "download")
        self._train(factory, scientist, workers_on)
        assert factory.count(Job) == 1 and _entries(factory) == []

    def test_their_results_are_flagged_and_never_auto_approved(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = self._plain(factory)
        owner, admin, officer = factory.owner(), factory.user("Administrator"), factory.user("Compliance Officer")
        scientist = factory.user(budget=100.0)
        _grant(client, factory, scientist, dataset)
        client.patch(f"{API}/privacy/settings", headers=owner.headers,
                     json={"non_private_jobs": True, "release_policy": "allow_non_private"})
        client.put(f"{API}/budget/users/{scientist.id}/non-private", headers=admin.headers, json={"allowed": True})
        client.post(f"{API}/release-policies", headers=officer.headers, json={"max_epsilon": 1.0})
        job = self._train(factory, scientist, workers_on)
        result = _finish(factory, job, event=None)
        filed = client.post(f"{API}/requests", headers=scientist.headers, json={
            "kind": "release", "target_type": "result", "target_id": result}).json()
        assert filed["state"] == "pending" and filed["payload"]["non_private"] is True
        card = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["card"]
        assert card["non_private"] is True and "NOT DIFFERENTIALLY PRIVATE" in card["flag"]
        assert card["paid_at_admission"] is True


def _finish(factory: Factory, job: Job, *, event: dict[str, Any] | None, value: Any = 41.7) -> int:
    """What a Worker's report would store: the job succeeded with a statistic."""
    with factory.sessions.begin() as session:
        row = session.get(Job, job.id)
        assert row is not None
        row.state = "succeeded"
        result = Result(job_id=row.id, owner_id=row.owner_id, kind="statistic", value={"value": value},
                        sha256="ab" * 32, size_bytes=12, event=event, epsilon=None if event is None else 0.5,
                        delta=1e-5, lineage={"job_id": row.id, "dataset_id": row.dataset_id, "inputs": row.inputs,
                                             "spec": row.spec, "settings": row.settings,
                                             "officer_only": {"zeroed_samples": 7}})
        session.add(result)
        session.flush()
        return result.id


class TestReleaseSpendsNothingMore:
    def test_approving_the_release_of_a_paid_result_does_not_charge_again(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = factory.dataset("paid", tensors={"x": _column(factory)})
        scientist, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        _grant(client, factory, scientist, dataset)
        job = _count(factory, scientist, "paid", 1.0, workers_on)
        result = _finish(factory, job, event=job.planned_event)
        before = client.get(f"{API}/budget", headers=scientist.headers).json()
        filed = client.post(f"{API}/requests", headers=scientist.headers, json={
            "kind": "release", "target_type": "result", "target_id": result}).json()
        assert filed["state"] == "pending" and filed["payload"]["paid"] is True
        assert filed["payload"]["epsilon"] == pytest.approx(job.planned_epsilon)
        assert "fingerprint" not in filed["payload"] and "sha256" not in filed["payload"]
        card = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["card"]
        assert card["paid_at_admission"] is True
        assert card["user"]["epsilon_before"] == 0.0
        assert card["user"]["epsilon_after"] == pytest.approx(before["spent_epsilon"], rel=1e-9)
        assert card["delta_times_rows"] == pytest.approx(1e-5 * ROWS)
        assert "a given row" in card["reading"] and "a given person" not in card["reading"]
        assert card["officer_only"] == {"zeroed_samples": 7}
        approved = client.post(f"{API}/requests/{filed['id']}/approve", headers=officer.headers,
                               json={"fingerprint": card["fingerprint"]})
        assert approved.status_code == 200, approved.text
        assert len(_entries(factory)) == 1  # the admission's entry only
        after = client.get(f"{API}/budget", headers=scientist.headers).json()
        assert after["spent_epsilon"] == before["spent_epsilon"] and after["events"] == 1
        data = client.get(f"{API}/results/{result}/data", headers=scientist.headers)
        assert data.status_code == 200 and data.json() == {"value": 41.7}

    def test_the_reading_uses_the_cumulative_epsilon_and_says_person_only_when_declared(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        dataset = factory.dataset("people", tensors={"x": _column(factory)})
        _declare(factory, dataset, one_row_per_person=True)
        scientist, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        _grant(client, factory, scientist, dataset)
        for _ in range(3):
            job = _count(factory, scientist, "people", 1.0, workers_on)
        result = _finish(factory, job, event=job.planned_event)
        filed = client.post(f"{API}/requests", headers=scientist.headers, json={
            "kind": "release", "target_type": "result", "target_id": result}).json()
        card = client.get(f"{API}/requests/{filed['id']}", headers=officer.headers).json()["card"]
        cumulative = client.get(f"{API}/budget", headers=scientist.headers).json()["spent_epsilon"]
        assert card["reading_epsilon"] == pytest.approx(cumulative, rel=1e-9)
        assert card["epsilon"] < cumulative  # the request's own ε is not what the reading speaks of
        assert f"ε = {cumulative:.3g}" in card["reading"] and "a given person" in card["reading"]


class TestDeltaFitsTheData:
    def test_a_job_whose_delta_exceeds_one_over_ten_n_is_refused_with_the_reason(
            self, client: TestClient, factory: Factory, workers_on: NodeSettings) -> None:
        big = factory.dataset("big", tensors={"x": _column(factory, rows=1_000_000)})
        scientist = factory.user(budget=10.0)
        _grant(client, factory, scientist, big)
        with pytest.raises(InvalidInput) as refused:
            _count(factory, scientist, "big", 1.0, workers_on)
        assert refused.value.details["rule"] == "delta_vs_rows"
        assert refused.value.details["rows"] == 1_000_000 and "1/(10·N)" in refused.value.message
        assert factory.count(Job) == 0 and _entries(factory) == []
        smaller_delta = workers_on.model_copy(update={"delta": 1e-8})
        _count(factory, scientist, "big", 1.0, smaller_delta)
        assert factory.count(Job) == 1

    def test_at_exactly_one_over_ten_n_it_is_admitted(self, client: TestClient, factory: Factory,
                                                       workers_on: NodeSettings) -> None:
        edge = factory.dataset("edge", tensors={"x": _column(factory, rows=10_000)})
        scientist = factory.user(budget=10.0)
        _grant(client, factory, scientist, edge)
        _count(factory, scientist, "edge", 1.0, workers_on)  # δ = 1e-5 = 1/(10·10⁴)
        assert factory.count(Job) == 1


class TestDeclaredMetadata:
    def _dataset(self, factory: Factory, *, label_dtype: str = "int64") -> int:
        return factory.dataset("labelled", tensors={"features": _column(factory, width=3),
                                                    "labels": _column(factory, dtype=label_dtype)})

    def _train(self, client: TestClient, user: MadeUser, out_features: int) -> Any:
        return client.post(f"{API}/jobs/train", headers=user.headers, json={
            "spec": {"layers": [{"type": "Linear", "in_features": 3, "out_features": out_features}]},
            "dataset": "labelled", "batch_size": 10, "dp": {"noise_multiplier": 5.0}})

    def test_declared_label_classes_must_fit_the_output_width(self, client: TestClient, factory: Factory) -> None:
        dataset = self._dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=10.0)
        _grant(client, factory, scientist, dataset)
        declared = client.patch(f"{API}/datasets/labelled", headers=owner.headers, json={"label_classes": 5})
        assert declared.status_code == 200 and declared.json()["label_classes"] == 5
        refused = self._train(client, scientist, 2)
        assert refused.status_code == 422
        assert "declares 5 label classes" in refused.json()["message"]
        assert refused.json()["details"] == {"field": "spec", "label_classes": 5, "output_width": 2}
        assert self._train(client, scientist, 5).status_code == 503  # past every check: no Workers here

    def test_classification_needs_integer_labels(self, client: TestClient, factory: Factory) -> None:
        dataset = self._dataset(factory, label_dtype="float32")
        scientist = factory.user(budget=10.0)
        _grant(client, factory, scientist, dataset)
        refused = self._train(client, scientist, 2)
        assert refused.status_code == 422 and "needs class indices" in refused.json()["message"]

    def test_the_owner_declares_label_classes_and_one_row_per_person(self, client: TestClient,
                                                                     factory: Factory) -> None:
        owner = factory.owner()
        created = client.post(f"{API}/datasets", headers=owner.headers, json={
            "name": "declared", "label_classes": 3, "one_row_per_person": True}).json()
        assert created["label_classes"] == 3 and created["one_row_per_person"] is True
        cleared = client.patch(f"{API}/datasets/declared", headers=owner.headers,
                               json={"clear_label_classes": True, "one_row_per_person": False}).json()
        assert cleared["label_classes"] is None and cleared["one_row_per_person"] is False
        assert client.patch(f"{API}/datasets/declared", headers=owner.headers,
                            json={"label_classes": 0}).status_code == 422


class TestConcurrentAdmission:
    N = 5

    def test_concurrent_submissions_never_overspend(self, any_db_client: TestClient, any_db_factory: Factory
                                                    ) -> None:
        client, factory = any_db_client, any_db_factory
        settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
            update={"ray_enabled": True, "job_max_concurrent": 1000, "job_max_per_day": 1000})
        dataset = factory.dataset("race", tensors={"x": _column(factory)})
        rdp = accounting.rdp_at_order(events.laplace_event(noise_multiplier=1 / 0.3), 6.0)
        budget = accounting.epsilon_from_rdp((self.N + 0.5) * rdp, 6.0, 1e-5)
        scientist = factory.user(budget=budget)
        _grant(client, factory, scientist, dataset)
        start = threading.Barrier(20)

        def submit(_: int) -> str:
            start.wait()
            try:
                _count(factory, scientist, "race", 0.3, settings)
            except BudgetExceeded:
                return "refused"
            return "admitted"

        with ThreadPoolExecutor(20) as pool:
            outcomes = list(pool.map(submit, range(20)))
        assert outcomes.count("admitted") == self.N and outcomes.count("refused") == 20 - self.N
        rows = _entries(factory)
        assert len(rows) == self.N == factory.count(Job)
        assert sum(r.rdp or 0.0 for r in rows) <= accounting.rdp_budget(budget, 1e-5, 6.0)
