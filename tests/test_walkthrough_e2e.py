"""The roadmap's walk-through as one test, against a live Node with a Ray Worker, through the SDK:

the owner hosts a private dataset; creates a data scientist with a budget; the data scientist searches,
requests access (an officer approves), trains with DP (the job's privacy cost is charged when it is
admitted); a second such job would exceed the budget, so it is refused when it is asked for, with a reason
the data scientist reads (the roadmap's "a get() that exceeds the budget is denied", now at the moment the
work is asked for, before anything runs); ``get()`` on the first result files a pending release request
(named in the error), the officer reads the cost card and approves it with the fingerprint, spending nothing
more, and the data scientist downloads the weights.
"""

from __future__ import annotations

import httpx
import pytest
import torch
from dp_accounting import DpEvent
from safetensors.torch import save
from torch import nn

from grid_runtime.privacy import accounting, events
from gridctl import DP
from gridctl.sdk.errors import Conflict
from gridctl.sdk.node import Node
from gridctl.sdk.releases import ReleaseNotApproved
from tests.ray_cluster import RayNode

ROWS, FEATURES, CLASSES = 2000, 10, 3
BATCH, EPOCHS, SIGMA = 100, 1, 1.0
PASSWORD = "walkthrough pw 1"


def _event() -> DpEvent:
    return events.dp_sgd_event(sample_rate=BATCH / ROWS, noise_multiplier=SIGMA, steps=EPOCHS * ROWS // BATCH)


def _budget_for_one() -> float:
    """A budget that admits one such run under the filter, not two."""
    rdp = accounting.rdp_at_order(_event(), accounting.DEFAULT_RDP_ORDER)
    return accounting.epsilon_from_rdp(1.5 * rdp, accounting.DEFAULT_RDP_ORDER, accounting.DEFAULT_DELTA)


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def _problem(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(ROWS, FEATURES, generator=torch.Generator().manual_seed(seed))
    w = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(7))
    return x, (x @ w).argmax(dim=1)


def _user(owner: Node, url: str, email: str, **fields: object) -> Node:
    owner.http.post("/users", json={"email": email, "password": PASSWORD, **fields})
    node = Node(url)
    node.login(email, PASSWORD)
    return node


class TestWalkthrough:
    def test_the_roadmap_walkthrough(self, ray_node: RayNode) -> None:
        owner = Node(ray_node.url, token=ray_node.owner_token)

        # The owner hosts private tensors as a dataset.
        owner.http.post("/datasets", json={"name": "patients", "visibility": "private",
                                           "description": "synthetic patient features"})
        x, y = _problem(1)
        for name, tensor, role in (("patients-features", x, "features"), ("patients-labels", y, "labels")):
            response = httpx.post(f"{ray_node.api}/tensors", content=save({"tensor": tensor.contiguous()}),
                                  headers={"Authorization": f"Bearer {ray_node.owner_token}"}, timeout=30,
                                  params={"name": name, "dataset": "patients", "role": role,
                                          "format": "safetensors"})
            assert response.status_code == 201, response.text

        # A data scientist with a budget that admits one such run, and a compliance officer.
        budget = _budget_for_one()
        scientist = _user(owner, ray_node.url, "ds@example.com", budget_epsilon=budget)
        officer = _user(owner, ray_node.url, "officer@example.com", role="Compliance Officer")

        # Search, then ask for compute on the dataset; the officer approves.
        hits = scientist.search("patients")
        assert {p.name for p in hits} == {"patients-features", "patients-labels"}
        assert all(p.level == "search" for p in hits)
        access = scientist.requests.ask_access(level="compute", dataset="patients", reason="train a triage model")
        officer.requests.approve(access.id, note="ok for training")
        assert access.refresh().status == "approved"

        # Train with DP: the job's cost is charged when it is admitted, before any Worker sees the data.
        dp = DP(noise_multiplier=SIGMA, max_grad_norm=1.0)
        job = scientist.jobs.train(_mlp(), dataset="patients", lr=0.5, epochs=EPOCHS, batch_size=BATCH, dp=dp,
                                   seed=1)
        charged = scientist.http.get("/budget")
        assert charged["events"] == 1 and 0 < charged["spent_epsilon"] <= budget
        assert charged["spent_epsilon"] == pytest.approx(accounting.epsilon_from_rdp(
            accounting.rdp_at_order(_event(), 6.0), 6.0, 1e-5), rel=1e-9)

        # A second such job would exceed the budget: refused when it is asked for, with a reason they read.
        with pytest.raises(Conflict) as refused:
            scientist.jobs.train(_mlp(), dataset="patients", lr=0.5, epochs=EPOCHS, batch_size=BATCH, dp=dp,
                                 seed=2)
        assert refused.value.code == "budget_exceeded"
        assert "cannot be admitted" in refused.value.message and "over your privacy budget" in refused.value.message
        assert f"cap of ε {budget:.4g}" in refused.value.message
        assert scientist.http.get("/budget/ledger")["total"] == 1

        assert job.wait(timeout=300).status == "succeeded", job.data.get("error")
        first = job.result
        assert first is not None

        # get() files a release request; the error names it, its state and why.
        with pytest.raises(ReleaseNotApproved) as pending:
            first.get()
        assert pending.value.state == "pending"
        assert f"release request {pending.value.request_id}" in str(pending.value)
        request_id = pending.value.request_id

        # The officer reads the cost card and approves exactly what they inspected.
        seen = officer.requests[request_id]
        card = seen.card
        assert card is not None and card["mechanism"].startswith("DP-SGD: 20 steps")
        assert card["epsilon"] == pytest.approx(accounting.epsilon(_event(), 1e-5), rel=1e-6)
        assert card["paid_at_admission"] is True
        assert card["user"]["epsilon_before"] == 0 and card["user"]["within_cap"]
        assert card["user"]["epsilon_after"] == pytest.approx(charged["spent_epsilon"], rel=1e-9)
        assert card["delta_times_rows"] == pytest.approx(1e-5 * ROWS)
        assert card["dataset"]["name"] == "patients"
        assert [row["layer"] for row in card["layers"]] == ["Linear", "ReLU", "Linear"]
        assert card["metrics"], "the officer sees the training metrics"
        assert "hit rate" in card["reading"] and "a given row" in card["reading"]
        officer.requests.approve(request_id, fingerprint=card["fingerprint"], note="small model, fine")

        # The data scientist downloads the weights and uses them; the release spent nothing more.
        weights = first.get()
        model = _mlp()
        model.load_state_dict(weights)
        assert model(torch.zeros(1, FEATURES)).shape == (1, CLASSES)
        after = scientist.http.get("/budget")
        assert after["spent_epsilon"] == charged["spent_epsilon"] <= budget
        assert scientist.http.get("/budget/ledger")["total"] == 1
