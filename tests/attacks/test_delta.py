"""δ against N: a δ that is large for the dataset's size lets a mechanism release whole rows.

Measured before the fix: any δ in (0, 1) was accepted whatever the dataset's size (with δ = 1e-5 and
N = 10⁶, δ·N = 10). The Node now refuses a job whose δ exceeds 1/(10·N) for the dataset it reads, with the
reason, before anything runs. Here the Node's δ is the default 1e-5 and N = 20,000 (δ·N = 0.2).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.attacks.conftest import InProcess, unique

BIG_N = 20_000  # 1/(10·N) = 5e-6 < δ = 1e-5
SMALL_N = 1_000  # 1/(10·N) = 1e-4 > δ


def _dataset(node: InProcess, rows: int) -> str:
    name = unique("census")
    node.dataset(name)
    generator = torch.Generator().manual_seed(rows)
    node.upload(f"{name}-features", torch.rand(rows, 2, generator=generator), dataset=name, role="features")
    node.upload(f"{name}-labels", torch.randint(0, 2, (rows,), generator=generator), dataset=name, role="labels")
    response = node.client.put(f"/api/v1/datasets/{name}/bounds", headers=node.owner.headers,
                               json={"features": {"lower": 0.0, "upper": 1.0}})
    assert response.status_code == 200, response.text
    return name


def _submit(node: InProcess, kind: str, dataset: str) -> Any:
    scientist = node.factory.user(budget=10.0)
    node.grant(scientist, "dataset", _dataset_id(node, dataset), "compute")
    if kind == "statistic":
        return node.client.post("/api/v1/jobs/statistics", headers=scientist.headers, json={
            "dataset": dataset, "member": "features", "column": 0, "statistic": "mean", "epsilon": 1.0})
    spec = {"layers": [{"type": "Linear", "in_features": 2, "out_features": 2}]}
    return node.client.post("/api/v1/jobs/train", headers=scientist.headers, json={
        "spec": spec, "dataset": dataset, "epochs": 1, "batch_size": 100,
        "dp": {"noise_multiplier": 1.0, "max_grad_norm": 1.0}})


def _dataset_id(node: InProcess, name: str) -> int:
    response = node.client.get(f"/api/v1/datasets/{name}", headers=node.owner.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["id"])


@pytest.mark.parametrize("kind", ["statistic", "train"])
class TestDeltaAgainstN:
    def test_a_job_whose_delta_exceeds_one_tenth_of_one_over_n_is_refused_with_the_reason(
            self, node: InProcess, kind: str) -> None:
        response = _submit(node, kind, _dataset(node, BIG_N))
        assert 400 <= response.status_code < 500, response.text
        message = response.json()["message"]
        assert "δ" in message or "delta" in message.lower()
        assert str(BIG_N) in message.replace(",", "").replace("_", "")  # names the row count it used

    def test_the_same_job_on_a_dataset_large_enough_for_delta_is_not_refused_for_delta(
            self, node: InProcess, kind: str) -> None:
        response = _submit(node, kind, _dataset(node, SMALL_N))
        # This Node runs no Workers, so the job cannot run here; what matters is that δ did not refuse it.
        message = response.json().get("message", "") if response.status_code >= 400 else ""
        assert "1/(10" not in message and "δ·N" not in message, message
