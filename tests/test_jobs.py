"""Job admission, quotas, results and Workers in process, without Ray (GRID_NODE_RAY_ENABLED=false).

Everything a job is refused for is decided before a job row exists, so these run without a cluster; the
Ray-backed lifecycle is in tests/test_training_e2e.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grid_runtime.node.jobs.models import Job, Result
from tests.factories import Factory, MadeUser

MLP = {"layers": [{"type": "Linear", "in_features": 3, "out_features": 4}, {"type": "ReLU"},
                  {"type": "Linear", "in_features": 4, "out_features": 2}]}


def _dataset(factory: Factory) -> int:
    features, labels = factory.tensor("f"), factory.tensor("l")
    with factory.sessions.begin() as session:  # labels: one per row of the features' [2, 3]
        from grid_runtime.node.tensors.models import Tensor

        tensor = session.get(Tensor, labels)
        assert tensor is not None
        tensor.shape, tensor.ndim, tensor.shape_key, tensor.dtype = [2], 1, ",2,", "int64"  # class indices
    return factory.dataset("cohort", tensors={"features": features, "labels": labels})


def _grant(client: TestClient, owner: MadeUser, user: MadeUser, dataset_id: int, level: str) -> None:
    response = client.post("/api/v1/permissions", headers=owner.headers, json={
        "subject_type": "user", "subject": user.id, "target_type": "dataset", "target_id": dataset_id,
        "level": level})
    assert response.status_code == 201, response.text


def _train(client: TestClient, user: MadeUser, **overrides: Any) -> Any:
    body = {"spec": MLP, "dataset": "cohort", "epochs": 1, "batch_size": 1, **overrides}
    return client.post("/api/v1/jobs/train", headers=user.headers, json=body)


class TestSubmitTraining:
    def test_refuses_a_layer_outside_the_allowlist_with_a_clear_422(self, client: TestClient,
                                                                   factory: Factory) -> None:
        _dataset(factory)
        scientist = factory.user()
        spec = {"layers": [{"type": "Linear", "in_features": 3, "out_features": 2},
                           {"type": "BatchNorm1d", "num_features": 2}]}
        response = _train(client, scientist, spec=spec)
        assert response.status_code == 422
        assert "layer 1 (BatchNorm1d) is not allowed: it mixes rows of a batch" in response.json()["message"]
        assert factory.count(Job) == 0

    @pytest.mark.parametrize("spec", [{"layers": []}, {"layers": "Linear"}, {"model": "pickle"},
                                      {"layers": [{"type": "Linear", "in_features": "3", "out_features": 2}]}])
    def test_refuses_a_malformed_spec(self, client: TestClient, factory: Factory, spec: dict[str, Any]) -> None:
        _dataset(factory)
        response = _train(client, factory.user(), spec=spec)
        assert response.status_code == 422
        assert "spec" in response.json()["message"]

    def test_refuses_a_model_that_does_not_fit_the_features(self, client: TestClient, factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user()
        _grant(client, owner, scientist, dataset, "compute")
        spec = {"layers": [{"type": "Linear", "in_features": 7, "out_features": 2}]}
        response = _train(client, scientist, spec=spec)
        assert response.status_code == 422
        assert "does not fit the features" in response.json()["message"]

    def test_initial_weights_must_be_base64_safetensors_matching_the_spec(self, client: TestClient,
                                                                          factory: Factory) -> None:
        import base64

        import torch
        from safetensors.torch import save

        from grid_runtime.compute.builder import build_module

        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=10.0)
        _grant(client, owner, scientist, dataset, "compute")
        dp = {"noise_multiplier": 5.0}
        not_base64 = _train(client, scientist, initial_weights="not base64 at all!", dp=dp)
        assert not_base64.status_code == 422 and "not base64" in not_base64.json()["message"]
        wrong = save({"0.weight": torch.zeros(9, 9)})
        refused = _train(client, scientist, initial_weights=base64.b64encode(wrong).decode(), dp=dp)
        assert refused.status_code == 422 and "initial_weights do not fit the spec" in refused.json()["message"]
        assert factory.count(Job) == 0
        fitting = save({k: v.contiguous() for k, v in build_module(MLP).state_dict().items()})
        accepted = _train(client, scientist, initial_weights=base64.b64encode(fitting).decode(), dp=dp)
        # past every check on the input: only the missing Workers of this Ray-less Node refuse it now
        assert accepted.status_code == 503, accepted.text

    def test_refuses_without_compute_on_the_inputs(self, client: TestClient, factory: Factory) -> None:
        _dataset(factory)
        response = _train(client, factory.user(budget=10), dp={"noise_multiplier": 1.0})
        assert response.status_code == 403
        assert "this needs compute on tensor" in response.json()["message"]
        assert factory.count(Job) == 0

    def test_refuses_a_cost_beyond_the_budget_before_anything_runs(self, client: TestClient,
                                                                   factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=1.0)
        _grant(client, owner, scientist, dataset, "compute")
        response = _train(client, scientist, epochs=50, dp={"noise_multiplier": 0.5})
        assert response.status_code == 409
        assert response.json()["code"] == "budget_exceeded"
        assert factory.count(Job) == 0

    def test_refuses_a_noise_multiplier_that_misses_its_target_epsilon(self, client: TestClient,
                                                                       factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=100.0)
        _grant(client, owner, scientist, dataset, "compute")
        response = _train(client, scientist, dp={"noise_multiplier": 0.3, "target_epsilon": 0.5})
        assert response.status_code == 422
        assert "above the target ε 0.5" in response.json()["message"]

    def test_an_admissible_job_is_refused_with_503_when_the_node_runs_no_workers(
            self, client: TestClient, factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=100.0)
        _grant(client, owner, scientist, dataset, "compute")
        response = _train(client, scientist, dp={"noise_multiplier": 5.0})
        assert response.status_code == 503
        assert "GRID_NODE_RAY_ENABLED=false" in response.json()["message"]
        assert factory.count(Job) == 0


class TestStatistics:
    def test_refuses_a_statistic_without_declared_bounds(self, client: TestClient, factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user(budget=10.0)
        _grant(client, owner, scientist, dataset, "compute")
        response = client.post("/api/v1/jobs/statistics", headers=scientist.headers, json={
            "dataset": "cohort", "member": "features", "statistic": "mean", "epsilon": 1.0})
        assert response.status_code == 422
        assert "declares no bounds for 'features'" in response.json()["message"]


class TestQuotas:
    def test_an_administrator_sets_a_quota_and_the_user_reads_it(self, client: TestClient,
                                                                 factory: Factory) -> None:
        admin, scientist = factory.user("Administrator"), factory.user()
        response = client.put(f"/api/v1/quotas/{scientist.id}", headers=admin.headers,
                              json={"max_concurrent": 1, "max_per_day": 3, "max_run_seconds": 60})
        assert response.status_code == 200, response.text
        mine = client.get(f"/api/v1/quotas/{scientist.email}", headers=scientist.headers).json()
        assert (mine["max_concurrent"], mine["max_per_day"], mine["max_run_seconds"]) == (1, 3, 60)
        assert "job_quota.set" in factory.audit_actions()

    def test_a_data_scientist_cannot_set_quotas(self, client: TestClient, factory: Factory) -> None:
        scientist = factory.user()
        response = client.put(f"/api/v1/quotas/{scientist.id}", headers=scientist.headers,
                              json={"max_concurrent": 100})
        assert response.status_code == 403

    def test_refuses_a_job_over_the_concurrent_quota(self, client: TestClient, factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user()
        _grant(client, owner, scientist, dataset, "compute")
        client.put(f"/api/v1/quotas/{scientist.id}", headers=owner.headers, json={"max_concurrent": 1})
        with factory.sessions.begin() as session:
            session.add(Job(kind="train", state="running", owner_id=scientist.id, inputs={}, spec={}, settings={}))
        response = _train(client, scientist)
        assert response.status_code == 429
        assert "your quota is 1 at a time" in response.json()["message"]


class TestWorkers:
    def test_listing_needs_view_statistics(self, client: TestClient, factory: Factory) -> None:
        assert client.get("/api/v1/workers", headers=factory.user().headers).status_code == 403

    def test_a_node_without_ray_lists_no_workers(self, client: TestClient, factory: Factory) -> None:
        response = client.get("/api/v1/workers", headers=factory.user("Compliance Officer").headers)
        assert response.status_code == 200
        assert response.json() == {"enabled": False, "head_address": None, "workers": [], "jobs_running": 0,
                                   "tasks_submitted": 0}


class TestResults:
    def _result(self, factory: Factory, owner_id: int, dataset_id: int, inputs: dict[str, int]) -> int:
        with factory.sessions.begin() as session:
            job = Job(kind="statistics", state="succeeded", owner_id=owner_id, dataset_id=dataset_id, inputs={},
                      spec={}, settings={})
            session.add(job)
            session.flush()
            result = Result(job_id=job.id, owner_id=owner_id, kind="statistic", value={"value": 3.0},
                            sha256="0" * 64, lineage={"inputs": {k: {"tensor_id": v} for k, v in inputs.items()}},
                            event={"type": "laplace", "noise_multiplier": 1.0}, epsilon=1.0, delta=1e-5)
            session.add(result)
            session.flush()
            return result.id

    def test_others_cannot_see_a_result(self, client: TestClient, factory: Factory) -> None:
        dataset = _dataset(factory)
        scientist, other = factory.user(), factory.user()
        result = self._result(factory, scientist.id, dataset, {"column": 1})
        assert client.get(f"/api/v1/results/{result}", headers=other.headers).status_code == 404
        officer = factory.user("Compliance Officer")
        assert client.get(f"/api/v1/results/{result}", headers=officer.headers).status_code == 200

    def test_a_result_is_downloadable_only_with_download_on_every_input(self, client: TestClient,
                                                                        factory: Factory) -> None:
        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user()
        with factory.sessions() as session:
            from grid_runtime.node.datasets.models import DatasetMember

            tensor_id = session.get(DatasetMember, (dataset, "features")).tensor_id  # type: ignore[union-attr]
        result = self._result(factory, scientist.id, dataset, {"column": tensor_id})
        _grant(client, owner, scientist, dataset, "compute")
        shown = client.get(f"/api/v1/results/{result}", headers=scientist.headers).json()
        assert shown["downloadable"] is False and shown["epsilon"] == 1.0
        refused = client.get(f"/api/v1/results/{result}/data", headers=scientist.headers)
        assert refused.status_code == 403
        assert "kind 'release'" in refused.json()["message"]
        _grant(client, owner, scientist, dataset, "download")
        assert client.get(f"/api/v1/results/{result}/data", headers=scientist.headers).json() == {"value": 3.0}
        assert "result.downloaded" in factory.audit_actions()


class TestWhatARequesterSees:
    """Before a release, jobs and results show their owner only fields that are not functions of private data
    (the allowlists in jobs/schemas.py); officers see the rest."""

    def _failed_job_and_result(self, factory: Factory, owner_id: int, dataset_id: int, tensor_id: int
                               ) -> tuple[int, int]:
        inputs = {"column": {"tensor_id": tensor_id, "role": "f", "sha256": "c" * 64, "shape": [2, 3],
                             "dtype": "float32"}}
        with factory.sessions.begin() as session:
            failed = Job(kind="statistics", state="failed", owner_id=owner_id, dataset_id=dataset_id, inputs=inputs,
                         spec={}, settings={"statistic": "count"}, error_code="internal",
                         error="the job failed on a Worker; an officer can read why",
                         error_detail="IndexError: Target 5 is out of bounds.", attempts=2, worker="w-1",
                         metrics=[{"epoch": 0, "loss": 0.4}])
            done = Job(kind="statistics", state="succeeded", owner_id=owner_id, dataset_id=dataset_id,
                       inputs=inputs, spec={}, settings={"statistic": "count"})
            session.add_all([failed, done])
            session.flush()
            result = Result(job_id=done.id, owner_id=owner_id, kind="statistic", value={"value": 3.0},
                            sha256="d" * 64, size_bytes=17, event={"type": "laplace", "noise_multiplier": 1.0},
                            epsilon=1.0, delta=1e-5,
                            lineage={"job_id": done.id, "dataset_id": dataset_id, "inputs": inputs, "spec": {},
                                     "settings": {}, "events": [], "steps": 40, "worker": "w-1", "attempts": 1,
                                     "officer_only": {"zeroed_samples": 527}})
            session.add(result)
            session.flush()
            return failed.id, result.id

    def test_a_failed_job_shows_its_owner_a_code_and_a_generic_message_only(self, client: TestClient,
                                                                             factory: Factory) -> None:
        from grid_runtime.node.jobs.schemas import JobOut

        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user()
        _grant(client, owner, scientist, dataset, "compute")
        job_id, _ = self._failed_job_and_result(factory, scientist.id, dataset, 1)
        shown = client.get(f"/api/v1/jobs/{job_id}", headers=scientist.headers).json()
        assert set(shown) == set(JobOut.model_fields)
        assert shown["error_code"] == "internal"
        assert shown["error"] == "the job failed on a Worker; an officer can read why"
        text = json.dumps(shown)
        for secret in ("Target 5", "c" * 64, "w-1", "0.4"):
            assert secret not in text
        assert shown["inputs"]["column"] == {"tensor_id": 1, "role": "f", "shape": [2, 3], "dtype": "float32"}
        listed = client.get("/api/v1/jobs", headers=scientist.headers).json()["items"]
        assert all("error_detail" not in j and "metrics" not in j for j in listed)
        officer = client.get(f"/api/v1/jobs/{job_id}", headers=factory.user("Compliance Officer").headers).json()
        assert officer["error_detail"] == "IndexError: Target 5 is out of bounds."
        assert officer["metrics"] == [{"epoch": 0, "loss": 0.4}] and officer["attempts"] == 2

    def test_a_result_shows_no_digest_size_or_counter_before_its_owner_may_download_it(
            self, client: TestClient, factory: Factory) -> None:
        from grid_runtime.node.jobs.schemas import PUBLIC_LINEAGE_FIELDS, ResultOut

        dataset = _dataset(factory)
        owner, scientist = factory.owner(), factory.user()
        with factory.sessions() as session:
            from grid_runtime.node.datasets.models import DatasetMember

            tensor_id = session.get(DatasetMember, (dataset, "features")).tensor_id  # type: ignore[union-attr]
        _grant(client, owner, scientist, dataset, "compute")
        _, result = self._failed_job_and_result(factory, scientist.id, dataset, tensor_id)
        shown = client.get(f"/api/v1/results/{result}", headers=scientist.headers).json()
        assert set(shown) == set(ResultOut.model_fields) and shown["downloadable"] is False
        assert set(shown["lineage"]) <= set(PUBLIC_LINEAGE_FIELDS)
        text = json.dumps(shown)
        for secret in ("d" * 64, "c" * 64, "527", "zeroed", "size_bytes", "sha256", "steps"):
            assert secret not in text
        officer = client.get(f"/api/v1/results/{result}", headers=factory.user("Compliance Officer").headers).json()
        assert officer["lineage"]["officer_only"] == {"zeroed_samples": 527} and officer["size_bytes"] == 17
        assert officer["sha256"] is None and len(officer["fingerprint"]) == 64 and officer["fingerprint"] != "d" * 64
        _grant(client, owner, scientist, dataset, "download")
        mine = client.get(f"/api/v1/results/{result}", headers=scientist.headers).json()
        assert mine["downloadable"] is True and mine["sha256"] == "d" * 64 and mine["fingerprint"] is None
