"""Issue 15 end to end on this machine: a real Node (uvicorn in a subprocess), several clients through the SDK, each
training on its own shard of a generated, learnable problem, and the CLI for hosting and for a client.

The margin: after 5 cycles of FedAvg (2 local epochs each) the model's held-out accuracy is within
``ACCURACY_MARGIN`` (5 points) of the same model trained centrally, with the same trainer, on the union of the
shards for the same 10 epochs. Everything the clients sent is recorded and checked: only parameter-shaped updates
and counts; and no row of any shard appears anywhere in the Node's state directory (database and object store)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
import torch
from safetensors.numpy import load, save

import gridctl
from gridctl.fl import Client
from tests.clitools import Gridctl, as_owner
from tests.live import LiveNode

FEATURES, CLASSES = 10, 3
SHARDS = (400, 600, 800, 1200)
CYCLES, LOCAL_EPOCHS, LR, BATCH = 5, 2, 0.1, 32
ACCURACY_MARGIN = 0.05
SPEC: dict[str, Any] = {"format": "gridctl.model-spec/1", "input_shape": [FEATURES],
                        "layers": [{"type": "Linear", "in_features": FEATURES, "out_features": CLASSES}]}
LAYOUT = {"0.weight": (CLASSES, FEATURES), "0.bias": (CLASSES,)}


def problem(seed: int = 7) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """Shards of a linearly separable 3-class problem, and a held-out test set."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(FEATURES, CLASSES))
    total = sum(SHARDS) + 1000
    x = rng.normal(size=(total, FEATURES)).astype(np.float32)
    y = np.argmax(x @ truth, axis=1).astype(np.int64)
    shards, start = [], 0
    for size in SHARDS:
        shards.append((x[start:start + size], y[start:start + size]))
        start += size
    return shards, x[start:], y[start:]


def accuracy(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    logits = x @ weights["0.weight"].T + weights["0.bias"]
    return float((logits.argmax(axis=1) == y).mean())


def initial_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"0.weight": (rng.normal(size=(CLASSES, FEATURES)) * 0.01).astype(np.float32),
            "0.bias": np.zeros(CLASSES, dtype=np.float32)}


def central_accuracy(shards: list[tuple[np.ndarray, np.ndarray]], x_test: np.ndarray, y_test: np.ndarray) -> float:
    from grid_runtime.compute import builder
    from grid_runtime.compute.training import TrainingSettings, train

    module = builder.build_module(SPEC, save(initial_weights()))
    x = torch.as_tensor(np.concatenate([s[0] for s in shards]))
    y = torch.as_tensor(np.concatenate([s[1] for s in shards]))
    result = train(module, x, y, TrainingSettings(loss="cross_entropy", optimizer="sgd", lr=LR,
                                                  epochs=CYCLES * LOCAL_EPOCHS, batch_size=BATCH))
    return accuracy(dict(load(result.weights)), x_test, y_test)


class Recorder:
    """Every request a client sent the Node: method, path, query and body."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, list[str]], bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> None:
        with self.lock:
            self.sent.append((request.method, request.url.path, parse_qs(request.url.query.decode()),
                              bytes(request.content)))


@pytest.fixture(scope="module")
def shards_and_test() -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    return problem()


class TestSeveralClientsOnTheirOwnShards:
    def test_fedavg_reaches_central_accuracy_and_the_node_never_sees_client_data(
        self, live_node: LiveNode, shards_and_test: Any
    ) -> None:
        shards, x_test, y_test = shards_and_test
        owner = gridctl.Node(live_node.url, token=live_node.owner_token)
        owner.fl.create("e2e-blobs", SPEC, initial_weights=save(initial_weights()),
                        client={"loss": "cross_entropy", "optimizer": "sgd", "lr": LR, "batch_size": BATCH,
                                "epochs": LOCAL_EPOCHS},
                        server={"clients_per_cycle": len(SHARDS), "min_reports": len(SHARDS), "cycle_seconds": 300,
                                "cycles": CYCLES})
        recorder = Recorder()
        errors: list[BaseException] = []
        reports: dict[int, list[Any]] = {}

        def take_part(index: int) -> None:
            token = owner.fl.issue_token("e2e-blobs", f"site-{index}")["token"]
            with Client(live_node.url, token=token) as client:
                client.http.client.event_hooks["request"].append(recorder)
                try:
                    reports[index] = client.run(*shards[index], timeout=240)
                except BaseException as exc:  # reported below, from the test's thread
                    errors.append(exc)

        threads = [threading.Thread(target=take_part, args=(i,)) for i in range(len(SHARDS))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        assert all(len(reports[i]) == CYCLES for i in range(len(SHARDS))), reports

        detail = owner.fl.show("e2e-blobs")
        assert detail["state"] == "completed" and detail["cycles_done"] == CYCLES
        assert [c["reports"] for c in detail["cycles"]] == [len(SHARDS)] * CYCLES
        assert [c["examples"] for c in detail["cycles"]] == [sum(SHARDS)] * CYCLES
        losses = [c["mean_loss"] for c in detail["cycles"]]
        assert losses[-1] < losses[0]  # the clients' reported loss falls cycle after cycle

        trained = owner.fl.checkpoint("e2e-blobs")
        start = accuracy(initial_weights(), x_test, y_test)
        federated, central = accuracy(trained, x_test, y_test), central_accuracy(shards, x_test, y_test)
        print(f"held-out accuracy: initial {start:.3f}, federated {federated:.3f}, central {central:.3f}")
        assert federated > start + 0.3, (start, federated)
        assert federated >= central - ACCURACY_MARGIN, (federated, central)

        self._check_only_updates_were_sent(recorder)
        self._check_no_row_is_stored(live_node.state_dir, shards)

    def _check_only_updates_were_sent(self, recorder: Recorder) -> None:
        paths = {path.removeprefix("/api/v1") for _, path, _, _ in recorder.sent}
        assert paths == {"/fl/client/join", "/fl/client/checkpoint", "/fl/client/report"}
        bodies = 0
        for method, path, query, body in recorder.sent:
            if path.endswith("/report"):
                assert set(query) <= {"cycle", "examples", "loss"}
                tensors = load(body)
                assert {k: v.shape for k, v in tensors.items()} == LAYOUT  # parameter-shaped, nothing else
                bodies += 1
            else:
                assert body == b"" and query == {}, (method, path)
        assert bodies == len(SHARDS) * CYCLES

    def _check_no_row_is_stored(self, state_dir: Path, shards: list[tuple[np.ndarray, np.ndarray]]) -> None:
        rows = [x[i] for x, _ in shards for i in (0, len(x) // 2, len(x) - 1)]
        needles = [row.astype(np.float32).tobytes() for row in rows] + \
                  [row.astype(np.float64).tobytes() for row in rows] + \
                  [json.dumps(float(row[0])).encode() for row in rows]
        files = [p for p in state_dir.rglob("*") if p.is_file()]
        assert any(p.suffix == ".safetensors" for p in files)
        for path in files:
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, path


class TestTheCommandLine:
    def test_host_issue_a_token_train_as_a_client_and_download_the_checkpoint(
        self, live_node: LiveNode, tmp_path: Path, shards_and_test: Any
    ) -> None:
        shards, x_test, y_test = shards_and_test
        owner: Gridctl = as_owner(live_node, tmp_path / "home")
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps(SPEC))
        weights = tmp_path / "initial.safetensors"
        weights.write_bytes(save(initial_weights()))
        created = owner.json("fl", "processes", "create", "cli-blobs", "--spec", str(spec), "--weights", str(weights),
                             "--lr", str(LR), "--epochs", "3", "--clients-per-cycle", "1", "--min-reports", "1",
                             "--cycles", "1")
        assert created["state"] == "running" and created["epsilon"] is None
        assert "cli-blobs" in [p["name"] for p in owner.json("fl", "processes", "list")]
        token = owner.json("fl", "tokens", "create", "cli-blobs", "site-a")["token"]
        data = tmp_path / "shard.npz"
        np.savez(data, features=shards[0][0], labels=shards[0][1])

        wrong = owner("fl", "client", "--process", "other", "--data", str(data), GRIDCTL_FL_TOKEN=token)
        assert wrong.exit_code != 0 and "cli-blobs" in wrong.stderr
        assert owner.json("fl", "processes", "show", "cli-blobs")["cycles"][0]["joined"] == 0  # took no place
        ran = owner.json("fl", "client", "--process", "cli-blobs", "--data", str(data), "--timeout", "120",
                         GRIDCTL_FL_TOKEN=token)
        assert [r["cycle"] for r in ran] == [1] and ran[0]["examples"] == len(shards[0][0])

        shown = owner.json("fl", "processes", "show", "cli-blobs")
        assert shown["state"] == "completed" and shown["cycles"][0]["reports"] == 1
        assert [c["number"] for c in owner.json("fl", "checkpoints", "list", "cli-blobs")] == [0, 1]
        dest = tmp_path / "trained.safetensors"
        assert owner("fl", "checkpoints", "download", "cli-blobs", str(dest)).exit_code == 0
        assert accuracy(dict(load(dest.read_bytes())), x_test, y_test) > 0.6
        tokens = owner.json("fl", "tokens", "list", "cli-blobs")
        assert [t["name"] for t in tokens] == ["site-a"]
        assert owner.json("fl", "tokens", "revoke", "cli-blobs", str(tokens[0]["id"]))["revoked_at"]
        refused = owner("fl", "client", "--process", "cli-blobs", "--data", str(data), GRIDCTL_FL_TOKEN=token)
        assert refused.exit_code != 0

    def test_stop_asks_first_and_then_ends_the_process(self, live_node: LiveNode, tmp_path: Path) -> None:
        owner = as_owner(live_node, tmp_path / "home")
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps(SPEC))
        created = owner.json("fl", "processes", "create", "cli-stop", "--spec", str(spec), "--cycles", "4",
                             "--noise-multiplier", "2", "--clip-norm", "1")
        assert created["server_config"]["dp"] == {"noise_multiplier": 2.0, "clip_norm": 1.0}
        assert 0 < created["epsilon"] < 20
        assert owner("fl", "processes", "stop", "cli-stop").exit_code == 2  # no terminal to ask on
        assert owner.json("fl", "processes", "stop", "cli-stop", "--yes")["state"] == "stopped"
