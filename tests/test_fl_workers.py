"""Federated learning's aggregation on a Worker (issue 15, docs/fl.md "Where"): each checked update is stored in the
object store and the cycle's average is made by a Ray task on a Worker, or by the Node when no Worker is alive;
the Node's own fold (``fl_aggregation=fold``, the default without Ray) stays as it was.

- On the Node, in process (no Ray): a stored cycle gives the very bytes a folded one gives; its updates leave the
  store when the cycle closes or the process stops; a restart mid-aggregation loses no report; the start-up sweep
  removes stored updates nothing names.
- The failure rule (``aggregation.aggregate``), with the Worker's attempt replaced: a lost Worker is retried up to
  ``job_max_attempts``, then the Node aggregates; no Worker alive: the Node at once. On a Ray Node of its own: with
  no Worker the Node averages at once; with a Worker whose tasks never answer in time, after two attempts.
- On the session's Ray cluster (a Node with its head and 2 Workers): the average is made on one of the Workers
  (its Ray node id is in the audit log, ``aggregated_on`` is ``worker``), its bytes equal the Node's fold of the
  same updates, central DP's noise is added there, and the stored updates are gone once the cycle closed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import load, save

from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.app import API_PREFIX, create_app
from tests.factories import Factory
from tests.ray_cluster import RayNode

SPEC: dict[str, Any] = {"format": "gridctl.model-spec/1", "input_shape": [6],
                        "layers": [{"type": "Linear", "in_features": 6, "out_features": 5}, {"type": "ReLU"},
                                   {"type": "Linear", "in_features": 5, "out_features": 3}]}
SHAPES = {"0.weight": (5, 6), "0.bias": (5,), "2.weight": (3, 5), "2.bias": (3,)}
UPDATES_DIR = Path("objects") / "fl" / "updates"


def initial() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}


def random_updates(count: int, seed: int = 1, scale: float = 0.3) -> list[tuple[bytes, int]]:
    """``count`` updates of random float32 values (rounding shows any change in the order or arithmetic), each
    with its own number of examples."""
    rng = np.random.default_rng(seed)
    return [(save({n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in SHAPES.items()}),
             int(rng.integers(1, 500))) for _ in range(count)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else response


def run_cycle(http: Any, owner: dict[str, str], name: str, updates: list[tuple[bytes, int]],
              dp: dict[str, float] | None = None, *, prefix: str = API_PREFIX) -> tuple[bytes, dict[str, Any]]:
    """Host ``name`` (cycle 1 closes on the last of ``updates``), have one client each join and report in order;
    returns checkpoint 1's bytes and the process's detail."""
    server: dict[str, Any] = {"clients_per_cycle": len(updates), "min_reports": len(updates), "cycle_seconds": 600,
                              "cycles": 2, **({"dp": dp} if dp else {})}
    ok(http.post(f"{prefix}/fl/processes", headers=owner, json={
        "name": name, "spec": SPEC, "initial_weights": base64.b64encode(save(initial())).decode(),
        "client": {"lr": 0.1, "epochs": 1, "batch_size": 8}, "server": server}), 201)
    tokens = [ok(http.post(f"{prefix}/fl/processes/{name}/tokens", headers=owner, json={"name": f"c{i}"}), 201)
              ["token"] for i in range(len(updates))]
    for token in tokens:
        assert ok(http.post(f"{prefix}/fl/client/join", headers=bearer(token)))["cycle"] == 1
    for token, (body, examples) in zip(tokens, updates, strict=True):
        answer = ok(http.post(f"{prefix}/fl/client/report", params={"cycle": 1, "examples": examples, "loss": 0.5},
                              content=body, headers={**bearer(token), "Content-Type": "application/octet-stream"}))
        assert answer == {"status": "accepted", "cycle": 1}
    detail = ok(http.get(f"{prefix}/fl/processes/{name}", headers=owner))
    response = http.get(f"{prefix}/fl/processes/{name}/checkpoints/1", headers=owner)
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == response.headers["X-Content-SHA256"]
    return response.content, detail


def expected_fedavg(updates: list[tuple[bytes, int]]) -> dict[str, np.ndarray]:
    start = initial()
    total = sum(examples for _, examples in updates)
    return {name: (start[name].astype(np.float64) + sum(load(body)[name].astype(np.float64) * examples
                                                         for body, examples in updates) / total).astype(np.float32)
            for name in SHAPES}


def stored_updates(state_dir: Path) -> list[Path]:
    base = state_dir / UPDATES_DIR
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


@pytest.fixture
def store_settings(tmp_path: Path) -> NodeSettings:
    return NodeSettings(state_dir=tmp_path / "store-state", database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        fl_aggregation="store")


@pytest.fixture
def store_client(store_settings: NodeSettings) -> Iterator[TestClient]:
    """A Node without Ray whose cycles store their updates: with no Worker, the Node averages them itself."""
    with TestClient(create_app(store_settings)) as test_client:
        yield test_client


# ---- on the Node, in process ------------------------------------------------------------------------------


class TestStoredCyclesOnTheNode:
    def test_a_stored_cycle_gives_the_same_bytes_as_a_folded_one_and_leaves_no_update_behind(
        self, client: TestClient, factory: Factory, store_client: TestClient, store_settings: NodeSettings,
        node_settings: NodeSettings,
    ) -> None:
        updates = random_updates(5)
        folded, folded_detail = run_cycle(client, factory.owner().headers, "same", updates)
        stored, stored_detail = run_cycle(store_client, Factory(store_client).owner().headers, "same", updates)
        assert stored == folded  # the same arithmetic in the same order: the same bytes
        new = load(stored)
        for name, value in expected_fedavg(updates).items():
            np.testing.assert_allclose(new[name], value, rtol=1e-6, atol=1e-7)
        assert [(c["state"], c["aggregated_on"]) for c in stored_detail["cycles"]] == [("aggregated", "node"),
                                                                                        ("open", None)]
        assert folded_detail["cycles"][0]["aggregated_on"] == "node"
        assert stored_updates(store_settings.state_dir) == []
        assert not (store_settings.state_dir / UPDATES_DIR / "1" / "1").exists()  # process 1, cycle 1: its folder too
        sums = store_settings.state_dir / "fl"
        assert not (sums.exists() and list(sums.glob("*.sum")))  # a stored cycle never has a running sum on the Node
        assert stored_updates(node_settings.state_dir) == []  # a folded cycle never stores an update

    def test_an_accepted_update_is_stored_before_the_answer_and_removed_when_the_process_stops(
        self, store_client: TestClient, store_settings: NodeSettings
    ) -> None:
        owner = Factory(store_client).owner().headers
        ok(store_client.post(f"{API_PREFIX}/fl/processes", headers=owner, json={
            "name": "p", "spec": SPEC, "server": {"clients_per_cycle": 3, "min_reports": 3}}), 201)
        token = ok(store_client.post(f"{API_PREFIX}/fl/processes/p/tokens", headers=owner, json={"name": "a"}),
                   201)["token"]
        ok(store_client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(token)))
        body, _ = random_updates(1)[0]
        ok(store_client.post(f"{API_PREFIX}/fl/client/report", params={"cycle": 1, "examples": 3}, content=body,
                             headers={**bearer(token), "Content-Type": "application/octet-stream"}))
        [kept] = stored_updates(store_settings.state_dir)
        assert kept.read_bytes() == body and kept.stat().st_mode & 0o077 == 0  # the Node's user only
        duplicate = store_client.post(f"{API_PREFIX}/fl/client/report", params={"cycle": 1, "examples": 3},
                                      content=random_updates(1, seed=9)[0][0],
                                      headers={**bearer(token), "Content-Type": "application/octet-stream"})
        assert duplicate.status_code == 409 and kept.read_bytes() == body  # a refusal overwrites nothing
        ok(store_client.post(f"{API_PREFIX}/fl/processes/p/stop", headers=owner))
        assert stored_updates(store_settings.state_dir) == []

    def test_a_node_stopped_before_the_aggregation_ran_loses_no_report(
        self, store_settings: NodeSettings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from grid_runtime.node.fl import aggregation

        updates = random_updates(3, seed=4)

        def interrupted(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the Node went away mid-aggregation")

        with monkeypatch.context() as patch, TestClient(create_app(store_settings)) as first:
            patch.setattr(aggregation, "aggregate", interrupted)
            owner = Factory(first).owner().headers
            with pytest.raises(AssertionError):  # checkpoint 1 is not there: the cycle could not close
                run_cycle(first, owner, "restart", updates)
            detail = ok(first.get(f"{API_PREFIX}/fl/processes/restart", headers=owner))
            assert [(c["state"], c["reports"]) for c in detail["cycles"]] == [("open", 3)]
            assert len(stored_updates(store_settings.state_dir)) == 3
        with TestClient(create_app(store_settings)) as second:  # the restart: the periodic settling finds it
            deadline = time.monotonic() + 20
            while ok(second.get(f"{API_PREFIX}/fl/processes/restart", headers=owner))["cycles"][0]["state"] == "open":
                assert time.monotonic() < deadline, "the interrupted cycle was not aggregated after the restart"
                time.sleep(0.2)
            new = load(second.get(f"{API_PREFIX}/fl/processes/restart/checkpoints/1", headers=owner).content)
            for name, value in expected_fedavg(updates).items():
                np.testing.assert_allclose(new[name], value, rtol=1e-6, atol=1e-7)
            assert stored_updates(store_settings.state_dir) == []

    def test_the_start_up_sweep_removes_stored_updates_that_no_committed_report_names(
        self, store_client: TestClient, store_settings: NodeSettings
    ) -> None:
        from grid_runtime.node.bootstrap import recover

        factory = Factory(store_client)
        owner = factory.owner().headers
        ok(store_client.post(f"{API_PREFIX}/fl/processes", headers=owner, json={
            "name": "p", "spec": SPEC, "server": {"clients_per_cycle": 3, "min_reports": 3}}), 201)
        token = ok(store_client.post(f"{API_PREFIX}/fl/processes/p/tokens", headers=owner, json={"name": "a"}),
                   201)["token"]
        ok(store_client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(token)))
        ok(store_client.post(f"{API_PREFIX}/fl/client/report", params={"cycle": 1, "examples": 3},
                             content=random_updates(1)[0][0],
                             headers={**bearer(token), "Content-Type": "application/octet-stream"}))
        store = ObjectStore(store_settings.resolved_object_store_url)
        [accepted] = store.keys("fl/updates/")
        unanswered = accepted.rsplit("/", 1)[0] + "/999.safetensors"  # written, its report never committed
        closed_cycle = "fl/updates/1/999/1.safetensors"  # its cycle is not open
        for key in (unanswered, closed_cycle):
            store.put_stream(key, io.BytesIO(b"x"))
        with factory.sessions() as session:
            report = recover(session, store_settings, store)
        assert sorted(report.orphan_blobs) == sorted([unanswered, closed_cycle])
        assert store.keys("fl/updates/") == [accepted]


# ---- the failure rule -------------------------------------------------------------------------------------


class TestTheFailureRule:
    @pytest.fixture
    def job(self, tmp_path: Path) -> tuple[Any, ObjectStore, NodeSettings, list[tuple[bytes, int]]]:
        from grid_runtime.compute.fedavg import CycleAggregation, Layout

        settings = NodeSettings(state_dir=tmp_path, job_max_attempts=2)
        store = ObjectStore(settings.resolved_object_store_url)
        updates = random_updates(4, seed=3)
        start = save(initial())
        store.put_stream("fl/checkpoints/start.safetensors", io.BytesIO(start))
        for index, (body, _) in enumerate(updates):
            store.put_stream(f"fl/updates/1/1/{index}.safetensors", io.BytesIO(body))
        layout = Layout(tuple((name, shape) for name, shape in SHAPES.items()))
        job = CycleAggregation(process_id=1, cycle_id=1, parameters=layout.to_json(),
                               checkpoint_key="fl/checkpoints/start.safetensors",
                               checkpoint_sha256=hashlib.sha256(start).hexdigest(),
                               updates=[(f"fl/updates/1/1/{i}.safetensors", float(e))
                                        for i, (_, e) in enumerate(updates)],
                               output_key="fl/checkpoints/new.safetensors", max_abs=1e4)
        return job, store, settings, updates

    def _check(self, store: ObjectStore, updates: list[tuple[bytes, int]], done: Any) -> None:
        with store.open(done.key) as reader:
            new = load(reader.read())
        with store.open(done.key) as reader:
            assert hashlib.sha256(reader.read()).hexdigest() == done.sha256
        assert store.keys("fl/checkpoints/") == sorted(["fl/checkpoints/start.safetensors", done.key])
        for name, value in expected_fedavg(updates).items():
            np.testing.assert_allclose(new[name], value, rtol=1e-6, atol=1e-7)

    def test_a_worker_lost_on_every_attempt_is_retried_then_the_node_aggregates(self, job: Any) -> None:
        from grid_runtime.node.fl import aggregation

        work, store, settings, updates = job
        tried: list[int] = []

        def lost(task: Any, node: NodeSettings) -> dict[str, Any]:
            tried.append(task.cycle_id)
            store.put_stream(task.output_key, io.BytesIO(b"half"))  # written before the Worker went away
            raise aggregation.WorkerLost("NodeDiedError")

        done = aggregation.aggregate(work, store=store, settings=settings, cluster=True, on_worker=lost,
                                     workers=lambda: 1)
        assert tried == [1, 1] and (done.on, done.attempts, done.worker, done.updates) == ("node", 2, None, 4)
        assert done.key == "fl/checkpoints/new.safetensors"
        self._check(store, updates, done)  # the lost attempts' keys are gone

    def test_a_worker_lost_once_is_retried_on_a_worker(self, job: Any) -> None:
        from grid_runtime.compute.fedavg import aggregate_stored
        from grid_runtime.node.fl import aggregation

        work, store, settings, updates = job
        answers: list[Any] = [aggregation.WorkerLost("WorkerCrashedError")]

        def flaky(task: Any, node: NodeSettings) -> dict[str, Any]:
            if answers:
                raise answers.pop()
            return {**aggregate_stored(store, task), "node_id": "f" * 56}

        done = aggregation.aggregate(work, store=store, settings=settings, cluster=True, on_worker=flaky,
                                     workers=lambda: 1)
        assert (done.on, done.attempts, done.worker) == ("worker", 2, "f" * 56)
        assert done.key == "fl/checkpoints/new-2.safetensors"
        self._check(store, updates, done)

    def test_without_a_live_worker_or_a_cluster_the_node_aggregates_at_once(self, job: Any) -> None:
        from grid_runtime.node.fl import aggregation

        work, store, settings, updates = job

        def never(task: Any, node: NodeSettings) -> dict[str, Any]:
            raise AssertionError("no Worker was alive: nothing may be sent to one")

        for cluster, workers in ((True, lambda: 0), (False, lambda: 2)):
            done = aggregation.aggregate(work, store=store, settings=settings, cluster=cluster, on_worker=never,
                                         workers=workers)
            assert (done.on, done.attempts) == ("node", 0)
            self._check(store, updates, done)

    def test_ray_errors_that_mean_a_lost_worker_are_told_from_failures(self) -> None:
        from ray import exceptions

        from grid_runtime.node.fl.aggregation import is_lost

        assert is_lost(exceptions.WorkerCrashedError()) and is_lost(exceptions.NodeDiedError("gone"))
        assert not is_lost(ValueError("a stored update is unreadable"))


# ---- on the session's Ray cluster -------------------------------------------------------------------------


@pytest.mark.timeout(900)  # the session's cluster may start here
class TestOnAWorker:
    @pytest.fixture
    def http(self, ray_node: RayNode) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=ray_node.url, timeout=120) as session:
            yield session

    def test_the_average_is_made_on_a_worker_with_the_bytes_the_nodes_fold_gives(
        self, ray_node: RayNode, http: httpx.Client, client: TestClient, factory: Factory
    ) -> None:
        owner = {"Authorization": f"Bearer {ray_node.owner_token}"}
        updates = random_updates(6, seed=11)
        name = f"worker-{uuid.uuid4().hex[:8]}"
        on_worker, detail = run_cycle(http, owner, name, updates)
        folded, _ = run_cycle(client, factory.owner().headers, "node", updates)
        assert on_worker == folded
        assert [(c["state"], c["aggregated_on"]) for c in detail["cycles"]] == [("aggregated", "worker"),
                                                                                ("open", None)]
        workers = {w["node_id"] for w in ok(http.get("/api/v1/workers", headers=owner))["workers"]}
        events = ok(http.get("/api/v1/audit", params={"action": "fl.cycle.aggregated", "target_id": detail["id"],
                                                      "limit": 10}, headers=owner))["items"]
        [event] = events
        assert event["details"]["on"] == "worker" and event["details"]["worker"] in workers  # not the head
        assert event["details"]["updates"] == 6 and event["details"]["attempts"] == 1
        assert not [p for p in stored_updates(ray_node.state_dir) if f"/{detail['id']}/" in str(p)]

    def test_central_dp_clips_and_adds_its_noise_on_the_worker(self, ray_node: RayNode, http: httpx.Client) -> None:
        owner = {"Authorization": f"Bearer {ray_node.owner_token}"}
        updates = random_updates(3, seed=5, scale=10.0)  # norms far above C = 1: every update is clipped
        clipped = []
        for body, _ in updates:
            tensors = load(body)
            norm = np.sqrt(sum(float(np.sum(t.astype(np.float64) ** 2)) for t in tensors.values()))
            clipped.append({n: t.astype(np.float64) / norm for n, t in tensors.items()})
        mean = {n: sum(c[n] for c in clipped) / 3 for n in SHAPES}
        start = initial()
        quiet, quiet_detail = run_cycle(http, owner, f"dp-quiet-{uuid.uuid4().hex[:8]}", updates,
                                        {"noise_multiplier": 1e-6, "clip_norm": 1.0})
        loud, loud_detail = run_cycle(http, owner, f"dp-loud-{uuid.uuid4().hex[:8]}", updates,
                                      {"noise_multiplier": 3.0, "clip_norm": 1.0})
        assert quiet_detail["cycles"][0]["aggregated_on"] == loud_detail["cycles"][0]["aggregated_on"] == "worker"
        for name in SHAPES:  # every client weighs one, whatever examples it reported
            np.testing.assert_allclose(load(quiet)[name], start[name] + mean[name], atol=1e-4)
        noise = np.concatenate([(load(loud)[n] - start[n] - mean[n]).ravel() for n in SHAPES])
        assert 0.5 < float(np.std(noise)) < 2.0  # σ·C / 3 reports = 1, drawn on the Worker


@pytest.mark.timeout(900)
def test_a_ray_node_averages_on_itself_without_a_worker_and_after_its_worker_is_given_up_on(
    tmp_path: Path, client: TestClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Node with its Ray head (no CPU, no Worker resource): with no Worker joined, the stored cycle is averaged by
    the Node itself at once, to the bytes the fold gives. Then a Worker joins, but every task on it counts as lost
    (the Node waits 1 ms for an answer): each cycle is tried on the Worker ``job_max_attempts`` (2) times, then
    averaged by the Node, with all its reports."""
    from tests.ray_cluster import start_ray_node

    monkeypatch.setenv("GRID_NODE_FL_AGGREGATION_TIMEOUT_SECONDS", "0.001")  # the Node subprocess's environment
    (tmp_path / "ray").mkdir()
    ray = start_ray_node(tmp_path / "ray", workers=0)
    try:
        with httpx.Client(base_url=ray.url, timeout=120) as http:
            owner = {"Authorization": f"Bearer {ray.owner_token}"}
            assert ok(http.get("/api/v1/workers", headers=owner))["workers"] == []
            updates = random_updates(4, seed=21)
            alone, alone_detail = run_cycle(http, owner, "alone", updates)
            ray.start_worker()
            ray.wait_for_workers(1)
            given_up, given_up_detail = run_cycle(http, owner, "given-up", updates)
            events = ok(http.get("/api/v1/audit", params={"action": "fl.cycle.aggregated"}, headers=owner))["items"]
        folded, _ = run_cycle(client, factory.owner().headers, "folded", updates)
        assert alone == given_up == folded
        assert alone_detail["cycles"][0]["aggregated_on"] == given_up_detail["cycles"][0]["aggregated_on"] == "node"
        by_process = {e["target_id"]: e["details"] for e in events}
        assert (by_process[str(alone_detail["id"])]["attempts"], by_process[str(given_up_detail["id"])]["attempts"]) \
            == (0, 2)
        assert given_up_detail["cycles"][0]["reports"] == 4 and by_process[str(given_up_detail["id"])]["updates"] == 4
        assert stored_updates(ray.state_dir) == []
    finally:
        ray.stop()
