"""Randomness no user controls, and inputs that cannot make a job fail.

A user's seed decides the model's initial parameters and nothing else: Poisson batches, DP noise and OpenDP's
noise differ between two runs with the same seed (and whatever the global generators were seeded with), so
replaying a run offline does not give back its noise. Values outside what the owner declared are mapped into
it, so a run's success is not a bit about a row.
"""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load

from grid_runtime.compute import statistics
from grid_runtime.compute.builder import build_module
from grid_runtime.compute.training import (
    IGNORED_LABEL,
    DPSettings,
    TrainingSettings,
    prepare_inputs,
    train,
)

ROWS, FEATURES = 200, 4
SPEC = {"input_shape": [FEATURES], "layers": [{"type": "Linear", "in_features": FEATURES, "out_features": 3}]}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(ROWS, FEATURES, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()


def _run(x: torch.Tensor, y: torch.Tensor, *, seed: int, sigma: float, batch_size: int,
         optimizer: str = "sgd") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """What the Worker does with a user's seed: build from it, then train. Returns (initial, trained)."""
    torch.manual_seed(seed)  # even the global generator seeded as the user asked changes nothing below
    random.seed(seed)
    module = build_module(SPEC, seed=seed)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    settings = TrainingSettings(loss="cross_entropy", optimizer=optimizer, lr=1.0, epochs=1, batch_size=batch_size,
                                dp=DPSettings(noise_multiplier=sigma, max_grad_norm=1.0))
    result = train(module, x, y, settings)
    return initial, load(result.weights)


class TestTheUsersSeed:
    def test_the_same_seed_gives_the_same_initial_weights_but_different_noise(self, data):
        """q = 1 (every row in the one batch): the only randomness left is the noise, and it differs."""
        x, y = data
        first_init, first = _run(x, y, seed=42, sigma=5.0, batch_size=ROWS)
        second_init, second = _run(x, y, seed=42, sigma=5.0, batch_size=ROWS)
        for name in first_init:
            assert torch.equal(first_init[name], second_init[name])
        update_gap = (first["0.weight"] - second["0.weight"]).abs().max()
        # Two independent noise draws of std σ·C / B = 5 / 200 per coordinate (times lr 1): far apart.
        assert update_gap > 1e-3

    def test_the_same_seed_gives_different_batches(self, data):
        """Almost no noise (σ = 1e-6) at q = 0.5: runs differ because their Poisson batches do."""
        x, y = data
        first_init, first = _run(x, y, seed=7, sigma=1e-6, batch_size=ROWS // 2)
        second_init, second = _run(x, y, seed=7, sigma=1e-6, batch_size=ROWS // 2)
        assert all(torch.equal(first_init[k], second_init[k]) for k in first_init)
        assert (first["0.weight"] - second["0.weight"]).abs().max() > 1e-4

    def test_replaying_a_run_with_its_seed_does_not_recover_the_clipped_gradient(self, data):
        """The seed-replay attack of issue 9: σ = 50, q = 1, one step of SGD at lr 1 on one weight vector.
        The attacker knows the seed and every row, replays the run offline and subtracts the noise they
        reproduce: what is left is not the true clipped gradient sum."""
        x, y = data
        sigma, lr = 50.0, 1.0
        initial, trained = _run(x, y, seed=3, sigma=sigma, batch_size=ROWS)
        observed_update = (initial["0.weight"] - trained["0.weight"]) * ROWS / lr  # = clipped sum + noise

        # The true clipped sum, computed without noise (what DP-SGD hides).
        module = build_module(SPEC, seed=3)
        clipped = torch.zeros_like(module[0].weight)
        for row, label in zip(x, y, strict=True):
            module.zero_grad()
            torch.nn.functional.cross_entropy(module(row[None]), label[None], reduction="sum").backward()
            grads = [p.grad for p in module.parameters()]
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            clipped += module[0].weight.grad * min(1.0, 1.0 / float(norm))
        # The attacker's replay: the same seed, the same settings; subtract what their run drew as noise.
        replay_init, replay = _run(x, y, seed=3, sigma=sigma, batch_size=ROWS)
        replay_noise = (replay_init["0.weight"] - replay["0.weight"]) * ROWS / lr - clipped
        recovered = observed_update - replay_noise
        error = (recovered - clipped).abs().mean()
        # Two independent draws of std σ·C (times √2 for the difference): nowhere near the clipped sum.
        assert error > sigma / 4
        assert float(clipped.abs().mean()) < error

    def test_opendp_statistics_ignore_every_user_controllable_seed(self):
        column = torch.arange(100, dtype=torch.float64)
        values = set()
        for _ in range(5):
            torch.manual_seed(0)
            random.seed(0)
            values.add(statistics.count(column, epsilon=0.1).value)
        assert len(values) > 1


class TestInputsThatCannotFailAJob:
    def test_labels_that_are_not_classes_of_the_model_are_left_out(self):
        module = build_module(SPEC, seed=0)  # 3 outputs: classes 0, 1, 2
        features = torch.randn(6, FEATURES)
        labels = torch.tensor([0.0, 2.0, 5.0, -1.0, 1.5, float("nan")])
        _, prepared = prepare_inputs(module, features, labels, "cross_entropy")
        assert prepared.tolist() == [0, 2, IGNORED_LABEL, IGNORED_LABEL, IGNORED_LABEL, IGNORED_LABEL]
        _, declared = prepare_inputs(module, features, labels, "nll", label_classes=2)
        assert declared.tolist()[:2] == [0, IGNORED_LABEL]

    @pytest.mark.parametrize("dp", [None, DPSettings(noise_multiplier=1.0, max_grad_norm=1.0)])
    @pytest.mark.parametrize("loss", ["cross_entropy", "nll"])
    def test_a_private_label_out_of_range_does_not_fail_the_run(self, data, loss, dp):
        """Issue 9: ``IndexError: Target 5 is out of bounds`` was a private label read through an error."""
        x, y = data
        y = y.clone()
        y[17] = 5
        module = build_module(SPEC, seed=1)
        result = train(module, x, y, TrainingSettings(loss=loss, optimizer="sgd", lr=0.1, epochs=1, batch_size=50,
                                                      dp=dp))
        assert result.steps == 4
        assert all(torch.isfinite(t).all() for t in load(result.weights).values())

    def test_features_and_regression_labels_are_clipped_to_the_declared_bounds(self):
        module = build_module({"layers": [{"type": "Linear", "in_features": 2, "out_features": 1}]}, seed=0)
        features = torch.tensor([[0.5, 100.0], [float("nan"), -3.0], [float("inf"), 0.0]])
        labels = torch.tensor([1e9, -1e9, float("nan")])
        x, y = prepare_inputs(module, features, labels, "mse", feature_bounds=([0.0, -1.0], [1.0, 1.0]),
                              label_bounds=(-10.0, 10.0))
        assert x.tolist() == [[0.5, 1.0], [0.0, -1.0], [1.0, 0.0]]
        assert y.tolist() == [10.0, -10.0, -10.0]

    def test_embedding_indices_are_clamped_into_the_table(self):
        spec = {"layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 2}, {"type": "Flatten"},
                           {"type": "Linear", "in_features": 6, "out_features": 2}]}
        module = build_module(spec, seed=0)
        features = torch.tensor([[0, 9, 10], [-4, 3, 1000]])
        x, _ = prepare_inputs(module, features, torch.tensor([0, 1]), "cross_entropy")
        assert x.tolist() == [[0, 9, 9], [0, 3, 9]]
        result = train(module, features, torch.tensor([0, 1]),
                       TrainingSettings(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=1, batch_size=2))
        assert result.steps == 1

    def test_binary_targets_are_probabilities(self):
        module = build_module({"layers": [{"type": "Linear", "in_features": 2, "out_features": 1}]}, seed=0)
        _, y = prepare_inputs(module, torch.zeros(3, 2), torch.tensor([3.0, -1.0, float("nan")]), "bce_with_logits")
        assert y.tolist() == [1.0, 0.0, 0.0]

    def test_a_row_count_mismatch_is_still_refused(self):
        """Metadata, not values: this one is known before a Worker runs and is refused at admission."""
        module = build_module(SPEC, seed=0)
        with pytest.raises(ValueError, match="same rows"):
            prepare_inputs(module, torch.zeros(3, FEATURES), torch.zeros(2), "cross_entropy")
