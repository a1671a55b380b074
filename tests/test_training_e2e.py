"""End to end on a real local Ray cluster: a Node (Ray head, no compute) and 2 Worker processes, one cluster
for the whole module (started once; stopped by pid). Through the SDK, as the data scientist would.

Stated figures: without DP the job's held-out accuracy is within 0.05 of the same training in plain torch;
with DP (σ = 1.0, C = 1.0, ε ≈ 2.9 at δ = 1e-5) it reaches at least 0.80 on this learnable problem.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import save
from torch import nn

from gridctl import DP
from gridctl.sdk.errors import GridctlError
from gridctl.sdk.node import Node
from tests.live import start_live_node
from tests.ray_cluster import RayNode

ROWS, FEATURES, CLASSES = 2000, 10, 3
PASSWORD = "data scientist pw 1"
BOUNDED_SECONDS = 45.0  # a lost Worker must turn into a retry or a failure within this


def _problem(seed: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable classification problem: labels from a fixed random linear map of Gaussian features."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, FEATURES, generator=generator)
    w = torch.randn(FEATURES, CLASSES, generator=torch.Generator().manual_seed(7))
    return x, (x @ w).argmax(dim=1)


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Linear(32, CLASSES))


@dataclass
class Cluster(RayNode):
    """The session's Ray cluster, with this module's dataset on it."""

    dataset: str = "synthetic"
    dataset_id: int = 0

    def user(self, email: str, *, budget: float | None = None, non_private: bool = False) -> Node:
        """A data scientist; ``non_private``: allowed jobs without DP (and the Node's settings allow them)."""
        owner = self.owner()
        body: dict[str, object] = {"email": email, "password": PASSWORD}
        if budget is not None:
            body["budget_epsilon"] = budget
        owner.http.post("/users", json=body)
        if non_private:
            owner.http.patch("/privacy/settings", json={"non_private_jobs": True})
            owner.http.put(f"/budget/users/{email}/non-private", json={"allowed": True})
        client = Node(self.url)
        client.login(email, PASSWORD)
        return client

    def grant(self, email: str, level: str) -> None:
        self.owner().http.post("/permissions", json={"subject_type": "user", "subject": email,
                                                     "target_type": "dataset", "target_id": self.dataset_id,
                                                     "level": level})

    def tasks_submitted(self) -> int:
        return int(self.owner().http.get("/workers")["tasks_submitted"])


def _upload(cluster: Cluster, name: str, tensor: torch.Tensor, role: str) -> None:
    body = save({"tensor": tensor.contiguous()})
    response = httpx.post(f"{cluster.api}/tensors", content=body, timeout=30,
                          headers={"Authorization": f"Bearer {cluster.owner_token}"},
                          params={"name": name, "dataset": cluster.dataset, "role": role, "format": "safetensors"})
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def cluster(ray_node: RayNode) -> Cluster:
    """The session's cluster (a Node, its Ray head and 2 Workers) with a private, learnable dataset."""
    cluster = Cluster(url=ray_node.url, state_dir=ray_node.state_dir, node=ray_node.node, workers=ray_node.workers,
                      owner_token=ray_node.owner_token)
    owner = cluster.owner()
    created = owner.http.post("/datasets", json={"name": cluster.dataset, "visibility": "private"})
    cluster.dataset_id = created["id"]
    x, y = _problem(1, ROWS)
    _upload(cluster, "synthetic-features", x, "features")
    _upload(cluster, "synthetic-labels", y, "labels")
    owner.http.put(f"/datasets/{cluster.dataset}/bounds", json={"features": {"lower": -4.0, "upper": 4.0}})
    return cluster


def _expected_epsilon(rows: int, batch_size: int, epochs: int, sigma: float, delta: float) -> float:
    """dp-accounting's own figure for these settings, computed here without the Node's code."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    steps = epochs * math.ceil(rows / batch_size)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(batch_size / rows, dp_accounting.GaussianDpEvent(sigma)), steps)
    accountant = RdpAccountant()
    accountant.compose(event)
    return float(accountant.get_epsilon(delta))


def _accuracy(state: dict[str, torch.Tensor]) -> float:
    model = _mlp()
    model.load_state_dict(state)
    x, y = _problem(2, 2000)  # held out: never on the Node
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _plain_torch_accuracy(epochs: int, batch_size: int, lr: float) -> float:
    torch.manual_seed(0)
    model = _mlp()
    x, y = _problem(1, ROWS)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(epochs):
        for indices in torch.randperm(ROWS).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[indices]), y[indices]).backward()
            optimizer.step()
    return _accuracy(model.state_dict())


def _worker_running(cluster: Cluster, job_id: int) -> subprocess.Popen[bytes] | None:
    """The Worker process whose Ray node runs ``ray::grid-job-<id>`` (Ray titles task processes so)."""
    title = f"ray::grid-job-{job_id}".encode()
    for worker in cluster.workers:
        if worker.poll() is not None:
            continue
        found = subprocess.run(["ps", "-o", "pid=", "-g", str(worker.pid)], capture_output=True, text=True).stdout
        for pid in found.split():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title):
                    return worker
            except OSError:
                continue
    return None


def _raylet_of(worker: subprocess.Popen[bytes]) -> int:
    found = subprocess.run(["ps", "-o", "pid=", "-g", str(worker.pid)], capture_output=True, text=True).stdout
    for pid in found.split():
        try:
            if b"raylet/raylet" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no raylet under Worker {worker.pid}")


class TestTrainingWithDP:
    def test_a_data_scientist_with_compute_trains_with_dp_and_epsilon_is_dp_accountings(self, cluster: Cluster
                                                                                         ) -> None:
        scientist = cluster.user("dp-scientist@example.com", budget=10.0)
        cluster.grant("dp-scientist@example.com", "compute")
        job = scientist.train(_mlp(), dataset=cluster.dataset, loss="cross_entropy", optimizer="sgd", lr=0.5,
                              epochs=3, batch_size=100, dp=DP(noise_multiplier=1.0, max_grad_norm=1.0), seed=3)
        assert job.wait(timeout=120).status == "succeeded", job.error
        result = job.result
        assert result is not None
        expected = _expected_epsilon(ROWS, 100, 3, 1.0, 1e-5)
        assert result.epsilon == pytest.approx(expected, rel=1e-9)
        assert result.delta == 1e-5
        assert job.planned_epsilon == pytest.approx(expected, rel=1e-9)
        assert result.lineage["inputs"]["features"]["role"] == "features"
        assert result.lineage["settings"]["dp"]["noise_multiplier"] == 1.0
        # Private inputs at compute level: the weights stay on the Node; get() asks for their release instead.
        assert result.downloadable is False
        with pytest.raises(GridctlError) as refused:
            result.get()
        assert refused.value.code == "release_not_approved"
        assert "pending" in refused.value.message
        # The officer (the Owner) sees the per-epoch metrics on private data; the scientist does not.
        assert "metrics" not in job.data
        officer_view = cluster.owner().jobs[job.id].data
        assert len(officer_view["metrics"]) == 3
        assert officer_view["metrics"][-1]["accuracy"] >= 0.80

    def test_dp_target_epsilon_is_calibrated_by_the_node(self, cluster: Cluster) -> None:
        scientist = cluster.user("target-scientist@example.com", budget=10.0)
        cluster.grant("target-scientist@example.com", "compute")
        job = scientist.train(_mlp(), dataset=cluster.dataset, lr=0.5, epochs=1, batch_size=200,
                              dp=DP(target_epsilon=2.0, max_grad_norm=1.0))
        sigma = job.data["settings"]["dp"]["noise_multiplier"]  # the SDK sent no σ: the Node calibrated it
        assert job.data["settings"]["dp"]["target_epsilon"] == 2.0
        assert job.planned_epsilon <= 2.0
        assert job.planned_epsilon == pytest.approx(_expected_epsilon(ROWS, 200, 1, sigma, 1e-5), rel=1e-9)
        assert job.wait(timeout=120).status == "succeeded", job.error
        assert job.result is not None and job.result.epsilon <= 2.0


class TestRefusals:
    def test_a_data_scientist_without_compute_is_refused(self, cluster: Cluster) -> None:
        scientist = cluster.user("no-compute@example.com", budget=10.0)
        before = cluster.tasks_submitted()
        with pytest.raises(GridctlError) as refused:
            scientist.train(_mlp(), dataset=cluster.dataset, epochs=1, batch_size=100,
                            dp=DP(noise_multiplier=1.0))
        assert refused.value.code == "forbidden"
        assert "compute" in refused.value.message
        assert scientist.jobs.list()["total"] == 0
        assert cluster.tasks_submitted() == before

    def test_a_job_over_the_remaining_budget_is_refused_before_any_ray_task(self, cluster: Cluster) -> None:
        scientist = cluster.user("small-budget@example.com", budget=2.5)
        cluster.grant("small-budget@example.com", "compute")
        before = cluster.tasks_submitted()
        with pytest.raises(GridctlError) as refused:
            scientist.train(_mlp(), dataset=cluster.dataset, epochs=20, batch_size=200,
                            dp=DP(noise_multiplier=0.7))
        assert refused.value.code == "budget_exceeded"
        time.sleep(1.5)  # several monitor ticks: nothing may be submitted late either
        assert cluster.tasks_submitted() == before
        assert scientist.jobs.list()["total"] == 0

    @pytest.mark.parametrize("spec, message", [
        ({"layers": [{"type": "Linear", "in_features": FEATURES, "out_features": 3},
                     {"type": "BatchNorm1d", "num_features": 3}]}, "BatchNorm1d) is not allowed"),
        ({"layers": [{"type": "os.system", "command": "true"}]}, "not an allowed layer type"),
        ({"layers": "Linear"}, "invalid model spec"),
    ])
    def test_a_bad_spec_is_refused_with_a_clear_error(self, cluster: Cluster, spec: dict[str, object],
                                                      message: str) -> None:
        scientist = cluster.user(f"spec-{abs(hash(message))}@example.com", budget=10.0)
        with pytest.raises(GridctlError) as refused:
            scientist.train(spec, dataset=cluster.dataset, epochs=1, batch_size=100)
        assert refused.value.code == "invalid_input"
        assert message in refused.value.message


class TestTrainingWithoutDP:
    def test_accuracy_is_within_margin_of_plain_torch_and_the_weights_are_safetensors(self, cluster: Cluster
                                                                                       ) -> None:
        scientist = cluster.user("plain-scientist@example.com", non_private=True)
        cluster.grant("plain-scientist@example.com", "download")
        job = scientist.train(_mlp(), dataset=cluster.dataset, lr=0.5, epochs=5, batch_size=50, seed=0)
        assert job.wait(timeout=120).status == "succeeded", job.error
        result = job.result
        assert result is not None and result.epsilon is None  # not differentially private
        assert result.downloadable is True  # the inheritance rule: download on every input
        state = result.get()  # loaded with safetensors (no pickle), checked against the sha256
        node_accuracy = _accuracy(state)
        torch_accuracy = _plain_torch_accuracy(epochs=5, batch_size=50, lr=0.5)
        assert torch_accuracy > 0.9
        assert abs(node_accuracy - torch_accuracy) <= 0.05


    def test_training_starts_from_the_initial_weights_sent_as_safetensors(self, cluster: Cluster) -> None:
        scientist = cluster.user("weights-scientist@example.com", non_private=True)
        cluster.grant("weights-scientist@example.com", "download")
        torch.manual_seed(11)
        module = _mlp()
        job = scientist.train(module, dataset=cluster.dataset, lr=1e-9, epochs=1, batch_size=500, seed=0,
                              initial_weights=True)
        assert job.wait(timeout=120).status == "succeeded", job.error
        trained = job.result.get()
        # a learning rate of 1e-9 moves nothing visible: what comes back is what was sent, not a fresh init
        for name, sent in module.state_dict().items():
            assert torch.allclose(trained[name], sent, atol=1e-6), name
        assert job.result.lineage["settings"]["initial_weights"]["sha256"]


class TestExistingHead:
    def test_a_node_drives_a_head_it_did_not_start_and_leaves_it_running(self, cluster: Cluster,
                                                                          tmp_path: Path) -> None:
        address = (cluster.state_dir / "ray-address").read_text().strip()
        second = start_live_node(tmp_path, extra_env={
            "GRID_NODE_RAY_ENABLED": "true", "GRID_NODE_RAY_ADDRESS": address,
            "GRID_NODE_RAY_TOKEN_FILE": str(cluster.state_dir / "secrets" / "ray-token")})
        try:
            workers = Node(second.url, token=second.owner_token).http.get("/workers")
            assert workers["head_address"] == address
            assert sum(w["alive"] for w in workers["workers"]) == 2  # the session's Workers, seen through it
        finally:
            second.stop()
        # the head belongs to the first Node: it outlives the second one
        assert sum(w["alive"] for w in cluster.owner().http.get("/workers")["workers"]) == 2


class TestStatistics:
    def test_a_dp_mean_uses_the_declared_bounds_and_records_its_event(self, cluster: Cluster) -> None:
        scientist = cluster.user("stats-scientist@example.com", budget=10.0)
        cluster.grant("stats-scientist@example.com", "compute")
        job = scientist.jobs.statistic("mean", dataset=cluster.dataset, member="features", column=0, epsilon=1.0)
        assert job.wait(timeout=120).status == "succeeded", job.error
        result = job.result
        assert result is not None and result.kind == "statistic"
        assert result.epsilon == pytest.approx(job.planned_epsilon)
        assert 1.0 <= result.epsilon < 1.01  # Laplace ε 1 read through the RDP accountant
        assert result.lineage["settings"]["bounds"] == [-4.0, 4.0]

    def test_a_mean_of_every_column_is_one_task_and_one_composed_charge(self, cluster: Cluster) -> None:
        email = "columns-scientist@example.com"
        scientist = cluster.user(email, budget=50.0)
        cluster.grant(email, "compute")
        before = cluster.tasks_submitted()
        job = scientist.jobs.statistic("mean", dataset=cluster.dataset, member="features", columns="all",
                                       epsilon=1.0)
        assert job.wait(timeout=120).status == "succeeded", job.error
        assert cluster.tasks_submitted() == before + 1
        result = job.result
        assert result is not None and result.epsilon == pytest.approx(job.planned_epsilon)
        assert result.data["event"]["type"] == "composed" and len(result.data["event"]["events"]) == FEATURES
        assert 1.0 < result.epsilon < FEATURES * 1.01  # the composition of ten ε = 1 means, charged once
        ledger = cluster.owner().http.get(f"/budget/users/{email}/ledger")["items"]
        assert len(ledger) == 1 and ledger[0]["job_id"] == job.id
        assert result.lineage["settings"]["columns"] == list(range(FEATURES))


class TestLifecycle:
    def test_cancel_stops_a_running_job(self, cluster: Cluster) -> None:
        scientist = cluster.user("cancel-scientist@example.com", non_private=True)
        cluster.grant("cancel-scientist@example.com", "compute")
        job = scientist.train(_mlp(), dataset=cluster.dataset, lr=0.1, epochs=1000, batch_size=10)
        deadline = time.monotonic() + 60
        while job.status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        job.cancel()
        assert job.wait(timeout=30).status == "cancelled"

    def test_the_run_time_limit_fails_a_job(self, cluster: Cluster) -> None:
        scientist = cluster.user("limited-scientist@example.com", non_private=True)
        cluster.grant("limited-scientist@example.com", "compute")
        cluster.owner().jobs.set_quota("limited-scientist@example.com", max_run_seconds=3)
        job = scientist.train(_mlp(), dataset=cluster.dataset, lr=0.1, epochs=1000, batch_size=10)
        assert job.wait(timeout=60).status == "failed"
        assert job.data["error_code"] == "timeout" and job.error == "the job passed its run-time limit"
        assert "run-time limit of 3s" in cluster.owner().jobs[job.id].data["error_detail"]

    def test_a_worker_killed_mid_job_gives_a_retry_or_a_failure_in_bounded_time(self, cluster: Cluster) -> None:
        scientist = cluster.user("kill-scientist@example.com", non_private=True)
        cluster.grant("kill-scientist@example.com", "compute")
        job = scientist.train(_mlp(), dataset=cluster.dataset, lr=0.1, epochs=1000, batch_size=10)
        deadline = time.monotonic() + 60
        worker = None
        while worker is None:
            assert time.monotonic() < deadline, "the job never started on a Worker"
            worker = _worker_running(cluster, job.id) if job.status == "running" else None
            time.sleep(0.3)
        os.kill(_raylet_of(worker), signal.SIGKILL)
        killed_at = time.monotonic()
        officer = cluster.owner()
        while True:
            job.refresh()
            retried = officer.jobs[job.id].data["attempts"] == 2
            if retried or job.data["state"] == "failed":
                break
            assert time.monotonic() - killed_at < BOUNDED_SECONDS, f"still {job.data} {BOUNDED_SECONDS}s later"
            time.sleep(0.3)
        assert "lost" in (job.error or "") and job.data["error_code"] == "worker_lost"
        if retried:  # the retry runs on the other Worker; stop it to keep the suite short
            job.cancel()
            assert job.wait(timeout=30).status in ("cancelled", "failed", "succeeded")
