"""The trainer: plain training matches plain torch, DP-SGD learns, its event is dp-accounting's, and it is robust."""

from __future__ import annotations

import warnings

import dp_accounting
import pytest
import torch
from dp_accounting.rdp import RdpAccountant
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from safetensors.torch import load
from torch import nn

from grid_runtime.compute.builder import build_module
from grid_runtime.compute.training import (
    DPSettings,
    TrainingCancelled,
    TrainingSettings,
    train,
)

DELTA = 1e-5
ROWS, TEST_ROWS, FEATURES = 2000, 1000, 10
SPEC = {
    "input_shape": [FEATURES],
    "layers": [
        {"type": "Linear", "in_features": FEATURES, "out_features": 32},
        {"type": "ReLU"},
        {"type": "Linear", "in_features": 32, "out_features": 2},
    ],
}
# Stated margins (see the report): without DP, test accuracy within 3 points of the same loop in plain torch;
# with DP (sigma 1.0, C 1.0, 5 epochs) at least 85% test accuracy (a majority guess gets ~50%).
PLAIN_MARGIN = 0.03
DP_ACCURACY = 0.85


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train fastest on one thread, and the test machine's cores are shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A learnable, slightly nonlinear two-class problem: 2,000 training rows and 1,000 test rows."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(ROWS + TEST_ROWS, FEATURES, generator=g)
    w = torch.randn(FEATURES, generator=g)
    score = x @ w + 0.5 * x[:, 0] * x[:, 1] + 0.3 * torch.randn(ROWS + TEST_ROWS, generator=g)
    y = (score > 0).long()
    return x[:ROWS], y[:ROWS], x[ROWS:], y[ROWS:]


def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((module.eval()(x).argmax(dim=1) == y).float().mean())


def fresh_model(seed: int = 0) -> nn.Sequential:
    return build_module(SPEC, seed=seed)


def settings(**overrides) -> TrainingSettings:
    values = dict(loss="cross_entropy", optimizer="adam", lr=0.01, epochs=5, batch_size=64)
    values.update(overrides)
    return TrainingSettings(**values)


def plain_torch_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int) -> None:
    """The reference: the textbook loop in plain torch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(99)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()


class TestWithoutDP:
    def test_accuracy_is_within_the_stated_margin_of_plain_torch(self, problem):
        x, y, x_test, y_test = problem
        ours = fresh_model()
        result = train(ours, x, y, settings())
        reference = fresh_model()
        plain_torch_training(reference, x, y, epochs=5, batch_size=64)
        ours_acc, plain_acc = accuracy(ours, x_test, y_test), accuracy(reference, x_test, y_test)
        print(f"\nwithout DP: ours {ours_acc:.3f}, plain torch {plain_acc:.3f}, {result.seconds:.2f}s")
        assert plain_acc > 0.85, "the problem must be learnable"
        assert abs(ours_acc - plain_acc) <= PLAIN_MARGIN
        assert result.steps == 5 * 32
        assert isinstance(result.event, dp_accounting.NonPrivateDpEvent)

    def test_metrics_are_recorded_per_epoch(self, problem):
        x, y, _, _ = problem
        result = train(fresh_model(), x, y, settings(epochs=3))
        assert [m.epoch for m in result.metrics] == [1, 2, 3]
        assert result.metrics[-1].loss < result.metrics[0].loss + 1e-6
        assert all(0.0 <= m.accuracy <= 1.0 for m in result.metrics)

    def test_regression_loss_trains_a_width_one_head(self):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(500, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0])
        model = build_module({"layers": [{"type": "Linear", "in_features": 4, "out_features": 1}]})
        result = train(model, x, y, settings(loss="mse", optimizer="sgd", lr=0.1, epochs=10, batch_size=50))
        assert result.metrics[-1].accuracy is None
        assert result.metrics[-1].loss < 0.05


class TestWithDP:
    def test_reaches_the_stated_accuracy_and_records_dp_accountings_event(self, problem):
        x, y, x_test, y_test = problem
        model = fresh_model()
        result = train(model, x, y, settings(dp=DPSettings(noise_multiplier=1.0, max_grad_norm=1.0)))
        acc = accuracy(model, x_test, y_test)

        reference = RdpAccountant()
        reference.compose(
            dp_accounting.SelfComposedDpEvent(
                dp_accounting.PoissonSampledDpEvent(64 / 2000, dp_accounting.GaussianDpEvent(1.0)), 5 * 32
            )
        )
        eps = reference.get_epsilon(DELTA)
        accountant = RdpAccountant()
        accountant.compose(result.event)
        print(f"\nwith DP: test accuracy {acc:.3f}, epsilon {eps:.3f} at delta {DELTA}, {result.seconds:.2f}s")
        assert acc >= DP_ACCURACY
        assert result.sample_rate == 0.032 and result.steps == 160
        assert accountant.get_epsilon(DELTA) == pytest.approx(eps, rel=1e-12)

    def test_the_same_start_gives_different_weights_every_run(self, problem):
        """Noise and batches come from os.urandom: the same model, data and settings never repeat a run."""
        x, y, _, _ = problem
        dp = DPSettings(noise_multiplier=1.0, max_grad_norm=1.0)
        first = train(fresh_model(), x[:400], y[:400], settings(epochs=1, dp=dp))
        second = train(fresh_model(), x[:400], y[:400], settings(epochs=1, dp=dp))
        assert first.weights != second.weights

    def test_non_finite_per_sample_gradients_are_zeroed_before_clipping(self, problem):
        x, y, _, _ = problem
        x, y = x[:400].clone(), y[:400]
        x[3] = float("inf")
        x[10, 2] = float("nan")
        dp = DPSettings(noise_multiplier=1.0, max_grad_norm=1.0)

        # What Opacus alone does with such a batch: the parameters become NaN.
        model = fresh_model()
        optimizer = DPOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1),
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            expected_batch_size=16,
        )
        gsm = GradSampleModule(model)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            nn.functional.cross_entropy(gsm(x[:16]), y[:16]).backward()
        optimizer.step()
        assert not all(torch.isfinite(p).all() for p in model.parameters())
        gsm.remove_hooks()

        model = fresh_model()
        result = train(model, x, y, settings(optimizer="sgd", lr=0.1, epochs=3, batch_size=16, dp=dp))
        assert result.zeroed_samples > 0
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert all(torch.isfinite(t).all() for t in load(result.weights).values())

    def test_empty_poisson_batches_are_handled(self):
        x = torch.randn(20, FEATURES)
        y = (x[:, 0] > 0).long()
        result = train(fresh_model(), x, y, settings(epochs=2, batch_size=1, dp=DPSettings(1.0, 1.0)))
        assert result.steps == 40 and result.sample_rate == 0.05


class TestProgressAndCancel:
    def test_progress_reports_rising_steps_and_each_epochs_metrics(self, problem):
        x, y, _, _ = problem
        reports = []
        train(fresh_model(), x[:640], y[:640], settings(epochs=2, dp=DPSettings(1.0, 1.0)), progress=reports.append)
        steps = [r.step for r in reports]
        assert steps == sorted(steps) and steps[-1] == 20 and reports[-1].steps == 20
        assert len(reports[-1].metrics) == 2

    def test_cancellation_stops_before_the_next_step(self, problem):
        x, y, _, _ = problem
        calls = {"n": 0}

        def should_cancel() -> bool:
            calls["n"] += 1
            return calls["n"] > 7

        with pytest.raises(TrainingCancelled) as info:
            train(fresh_model(), x, y, settings(dp=DPSettings(1.0, 1.0)), should_cancel=should_cancel)
        assert info.value.steps == 7


class TestSettings:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"loss": "custom_python"}, "loss must be one of"),
            ({"optimizer": "lbfgs"}, "optimizer must be"),
            ({"lr": 0.0}, "lr must be"),
            ({"epochs": 0}, "epochs must be"),
            ({"batch_size": 0}, "batch_size"),
        ],
    )
    def test_invalid_settings_are_refused(self, overrides, message):
        with pytest.raises(ValueError, match=message):
            settings(**overrides)

    def test_dp_settings_must_be_positive(self):
        with pytest.raises(ValueError, match="noise_multiplier"):
            DPSettings(noise_multiplier=0.0, max_grad_norm=1.0)
        with pytest.raises(ValueError, match="max_grad_norm"):
            DPSettings(noise_multiplier=1.0, max_grad_norm=float("inf"))

    def test_mismatched_rows_are_refused(self):
        with pytest.raises(ValueError, match="same rows"):
            train(fresh_model(), torch.randn(10, FEATURES), torch.zeros(9, dtype=torch.long), settings())
