"""A training job's estimated peak memory (grid_runtime/compute/memory.py) and its admission against a Worker's
declared memory (GRID_NODE_WORKER_MEMORY_BYTES): a few hundred bytes of spec must not ask a Worker for 74 GiB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grid_runtime.compute.memory import describe_bytes, estimate_training, refusal
from grid_runtime.compute.spec import parse_spec
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from grid_runtime.node.budget.models import LedgerEntry
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.tensors.models import Tensor
from tests.factories import Factory

GiB = 1024**3
WIDE = {"layers": [{"type": "Linear", "in_features": 3, "out_features": 65536},
                   {"type": "Linear", "in_features": 65536, "out_features": 300}]}
WIDE_PARAMETERS = 3 * 65536 + 65536 + 65536 * 300 + 300


class TestEstimate:
    def test_dp_needs_a_gradient_per_parameter_per_row_74_gib_for_the_measured_model(self) -> None:
        estimate = estimate_training(parse_spec(WIDE), batch_size=1000, dp=True)
        assert estimate.per_sample_gradients == WIDE_PARAMETERS * 1000 * 4
        assert 74 * GiB < estimate.per_sample_gradients < 75 * GiB
        assert estimate.total > estimate.per_sample_gradients
        assert estimate.largest_part() == "per sample gradients"

    def test_the_measured_model_is_refused_on_a_default_worker_and_the_reason_says_why(self) -> None:
        estimate = estimate_training(parse_spec(WIDE), batch_size=1000, dp=True)
        reason = refusal(estimate, NodeSettings().worker_memory_bytes)
        assert reason is not None
        assert "75.4 GiB" in reason and "per sample gradients" in reason and "batch_size" in reason

    def test_without_dp_there_are_no_per_sample_gradients_and_the_same_model_fits(self) -> None:
        estimate = estimate_training(parse_spec(WIDE), batch_size=1000, dp=False)
        assert estimate.per_sample_gradients == 0
        assert estimate.total < 2 * GiB
        assert refusal(estimate, 4 * GiB) is None

    def test_activations_grow_with_the_batch_and_adam_keeps_two_moments(self) -> None:
        spec = parse_spec({"input_shape": [784], "layers": [{"type": "Linear", "in_features": 784,
                                                             "out_features": 128}, {"type": "ReLU"}]})
        small = estimate_training(spec, batch_size=10, dp=False)
        large = estimate_training(spec, batch_size=1000, dp=False)
        assert large.activations == 100 * small.activations
        # input 784 + two outputs of 128 kept, and twice the widest (784) for the gradients flowing back
        assert small.activations == (784 + 128 + 128 + 2 * 784) * 10 * 4
        adam = estimate_training(spec, batch_size=10, dp=False, optimizer="adam")
        assert adam.optimizer_state == 2 * spec.parameter_count() * 4
        assert small.optimizer_state == 0

    def test_the_inputs_held_by_the_worker_count(self) -> None:
        spec = parse_spec(WIDE)
        assert (estimate_training(spec, batch_size=1, dp=False, input_bytes=10**9).total
                - estimate_training(spec, batch_size=1, dp=False).total) == 10**9

    def test_describes_sizes_in_binary_units(self) -> None:
        assert describe_bytes(512) == "512 B"
        assert describe_bytes(3 * 1024**2) == "3.0 MiB"
        assert describe_bytes(80_908_441_408) == "75.4 GiB"

    def test_the_estimator_does_not_import_torch(self) -> None:
        code = ("import sys; import grid_runtime.compute.memory; "
                "sys.exit(1 if 'torch' in sys.modules else 0)")
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _wide_dataset(factory: Factory, rows: int) -> None:
    """features [rows, 3] and labels [rows]: rows only (no blobs), enough for admission."""
    features, labels = factory.tensor("f"), factory.tensor("l")
    with factory.sessions.begin() as session:
        for tensor_id, shape in ((features, [rows, 3]), (labels, [rows])):
            tensor = session.get(Tensor, tensor_id)
            assert tensor is not None
            tensor.shape, tensor.ndim = shape, len(shape)
            tensor.shape_key = "," + "".join(f"{d}," for d in shape)
            if tensor_id == labels:
                tensor.dtype = "int64"  # class indices, as admission requires for cross_entropy
    factory.dataset("wide", tensors={"features": features, "labels": labels})


def _submit_wide(client: TestClient, factory: Factory) -> Any:
    """The measured job (DP, batch 1,000) by a scientist with compute on the dataset and budget to spare."""
    _wide_dataset(factory, 5000)
    owner, scientist = factory.owner(), factory.user(budget=100.0)
    dataset_id = client.get("/api/v1/datasets/wide", headers=owner.headers).json()["id"]
    granted = client.post("/api/v1/permissions", headers=owner.headers, json={
        "subject_type": "user", "subject": scientist.id, "target_type": "dataset", "target_id": dataset_id,
        "level": "compute"})
    assert granted.status_code == 201, granted.text
    return client.post("/api/v1/jobs/train", headers=scientist.headers, json={
        "spec": WIDE, "dataset": "wide", "batch_size": 1000, "dp": {"noise_multiplier": 1.0}})


class TestAdmission:
    def test_a_job_that_would_not_fit_a_worker_is_refused_before_anything_is_charged(
            self, client: TestClient, factory: Factory) -> None:
        response: Any = _submit_wide(client, factory)
        assert response.status_code == 422, response.text
        body = response.json()
        assert "GiB on a Worker" in body["message"] and "per sample gradients" in body["message"]
        assert body["details"]["worker_memory_bytes"] == 4 * GiB
        assert body["details"]["estimated_bytes"]["per_sample_gradients"] == WIDE_PARAMETERS * 1000 * 4
        assert factory.count(Job) == 0
        assert factory.count(LedgerEntry) == 0

    def test_the_limit_is_the_workers_declared_memory(self, tmp_path: Path, sqlite_url: str) -> None:
        # A Node whose Workers declare 100 GiB admits the same job up to the Worker check (503: no Ray here).
        settings = NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url,
                                worker_memory_bytes=100 * GiB)
        with TestClient(create_app(settings)) as client:
            response: Any = _submit_wide(client, Factory(client))
            assert response.status_code == 503, response.text


@pytest.mark.parametrize("value", ["1", str(100 * 1024**2)])
def test_a_worker_memory_below_256_mib_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("GRID_NODE_WORKER_MEMORY_BYTES", value)
    with pytest.raises(ValidationError):
        NodeSettings()
