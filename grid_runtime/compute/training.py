"""The trainer: a pure function from a built module and tensors to trained weights, metrics and a privacy event.

With DP it is DP-SGD through Opacus' own parts, assembled here so the privacy event is exactly what ran:
Poisson sampling (`UniformWithReplacementSampler` at rate batch_size / rows, ceil(rows / batch_size) steps an
epoch, the plan of `grid_runtime.privacy.dp_sgd_plan`), per-sample gradients (`GradSampleModule`), clipping and
Gaussian noise (`DPOptimizer`). Per-sample gradients that are not finite are zeroed before clipping: a row
that overflows contributes nothing, rather than turning every parameter into NaN (a zero gradient has norm
0 <= C, so the sensitivity and the accounting are unchanged).

The function touches no database, files or network; the job layer feeds it tensors, reports progress through
the callback and cancels through the check.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from dp_accounting import DpEvent
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from opacus.validators import ModuleValidator
from torch import nn

from grid_runtime.compute.builder import weights_bytes
from grid_runtime.privacy import dp_sgd_event, dp_sgd_plan, non_private_event

Loss = Literal["cross_entropy", "nll", "bce_with_logits", "mse", "l1", "huber"]
Optimizer = Literal["sgd", "adam"]

LOSSES: dict[str, Callable[[str], nn.Module]] = {
    "cross_entropy": lambda reduction: nn.CrossEntropyLoss(reduction=reduction),
    "nll": lambda reduction: nn.NLLLoss(reduction=reduction),
    "bce_with_logits": lambda reduction: nn.BCEWithLogitsLoss(reduction=reduction),
    "mse": lambda reduction: nn.MSELoss(reduction=reduction),
    "l1": lambda reduction: nn.L1Loss(reduction=reduction),
    "huber": lambda reduction: nn.HuberLoss(reduction=reduction),
}
CLASSIFICATION_LOSSES = {"cross_entropy", "nll"}
MAX_EPOCHS = 1_000
EVAL_CHUNK = 8_192


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD settings: noise multiplier σ and per-sample clipping norm C."""

    noise_multiplier: float
    max_grad_norm: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise ValueError("noise_multiplier must be a finite number > 0")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise ValueError("max_grad_norm must be a finite number > 0")


@dataclass(frozen=True)
class TrainingSettings:
    loss: Loss
    optimizer: Optimizer
    lr: float
    epochs: int
    batch_size: int
    dp: DPSettings | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError("lr must be in (0, 10]")
        if not (1 <= self.epochs <= MAX_EPOCHS):
            raise ValueError(f"epochs must be between 1 and {MAX_EPOCHS}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


@dataclass(frozen=True)
class EpochMetrics:
    """Loss (and accuracy for classification) on the training data after an epoch: officer-only figures."""

    epoch: int
    loss: float
    accuracy: float | None


@dataclass(frozen=True)
class TrainingResult:
    weights: bytes
    metrics: list[EpochMetrics]
    steps: int
    sample_rate: float
    event: DpEvent
    zeroed_samples: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    epoch: int
    metrics: list[EpochMetrics] = field(default_factory=list)


class TrainingCancelled(Exception):
    """The cancellation check said stop; `steps` steps had run."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"training cancelled after {steps} steps")
        self.steps = steps


class _FiniteDPOptimizer(DPOptimizer):
    """Opacus' DPOptimizer that zeroes each sample's whole gradient if any coordinate of it is not finite."""

    zeroed_samples: int = 0

    def clip_and_accumulate(self) -> None:
        samples = self.grad_samples
        if samples and len(samples[0]) > 0:
            finite = torch.ones(len(samples[0]), dtype=torch.bool, device=samples[0].device)
            for grad_sample in samples:
                finite &= torch.isfinite(grad_sample.reshape(len(grad_sample), -1)).all(dim=1)
            bad = int((~finite).sum())
            if bad:
                self.zeroed_samples += bad
                for p, grad_sample in zip(self.params, samples, strict=True):
                    mask = finite.view(-1, *([1] * (grad_sample.dim() - 1)))
                    p.grad_sample = torch.where(mask, grad_sample, torch.zeros_like(grad_sample))
        super().clip_and_accumulate()


def _make_optimizer(name: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _check_inputs(features: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    if features.dim() < 1 or labels.dim() < 1 or len(features) != len(labels):
        raise ValueError(f"features ({len(features)} rows) and labels ({len(labels)} rows) must have the same rows")
    if len(features) == 0:
        raise ValueError("no rows to train on")
    if loss in CLASSIFICATION_LOSSES:
        if labels.dtype.is_floating_point and not torch.equal(labels, labels.round()):
            raise ValueError(f"{loss} needs integer class labels")
        return labels.long().reshape(-1)
    return labels.float()


@torch.no_grad()
def _evaluate(module: nn.Module, features: torch.Tensor, labels: torch.Tensor, loss: str) -> tuple[float, float | None]:
    was_training = module.training
    module.eval()
    criterion = LOSSES[loss]("sum")
    total, correct = 0.0, 0
    for start in range(0, len(features), EVAL_CHUNK):
        x, y = features[start : start + EVAL_CHUNK], labels[start : start + EVAL_CHUNK]
        out = module(x)
        total += float(criterion(_shape_output(out, y, loss), y))
        if loss in CLASSIFICATION_LOSSES:
            correct += int((out.argmax(dim=-1) == y).sum())
        elif loss == "bce_with_logits":
            correct += int(((out.reshape(y.shape) > 0).float() == y).sum())
    module.train(was_training)
    rows = len(features)
    accuracy = correct / rows if loss in CLASSIFICATION_LOSSES or loss == "bce_with_logits" else None
    return total / rows, accuracy


def _shape_output(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    # A regression or binary head of width 1 against 1-D labels: squeeze the trailing dim.
    if loss not in CLASSIFICATION_LOSSES and out.shape != y.shape and out.numel() == y.numel():
        return out.reshape(y.shape)
    return out


def train(
    module: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    settings: TrainingSettings,
    *,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train `module` in place on (features, labels) and return its weights, metrics, plan and privacy event.

    Without DP: shuffled mini-batches, ceil(rows / batch_size) steps an epoch, the event is non-private.
    With DP: DP-SGD as described in the module docstring; the event is `dp_sgd_event(sample_rate, σ, steps)`
    for the steps that ran. `should_cancel` is checked before every step (raises TrainingCancelled);
    `progress` is called about ten times an epoch and after each epoch's metrics.
    """
    started = time.perf_counter()
    labels = _check_inputs(features, labels, settings.loss)
    features = features.float() if features.dtype.is_floating_point else features
    rows = len(features)
    sample_rate, planned_steps = dp_sgd_plan(
        rows=rows, batch_size=min(settings.batch_size, rows), epochs=settings.epochs
    )
    steps_per_epoch = planned_steps // settings.epochs
    report_every = max(1, steps_per_epoch // 10)

    with torch.random.fork_rng(devices=[]):
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        generator = torch.Generator()
        generator.manual_seed(settings.seed if settings.seed is not None else int(torch.seed() % 2**63))

        dp = settings.dp
        batch_size = min(settings.batch_size, rows)
        optimizer: torch.optim.Optimizer
        dp_optimizer: _FiniteDPOptimizer | None = None
        if dp is not None:
            errors = ModuleValidator.validate(module, strict=False)
            if errors:
                raise ValueError(f"the model cannot be trained with DP: {errors[0]}")
            trained = GradSampleModule(module, loss_reduction="sum")
            optimizer = dp_optimizer = _FiniteDPOptimizer(
                _make_optimizer(settings.optimizer, list(module.parameters()), settings.lr),
                noise_multiplier=dp.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
                expected_batch_size=batch_size,
                loss_reduction="mean",
                generator=generator,
            )
            criterion = LOSSES[settings.loss]("sum")
            sampler = UniformWithReplacementSampler(
                num_samples=rows, sample_rate=sample_rate, generator=generator, steps=steps_per_epoch
            )
        else:
            trained = module
            optimizer = _make_optimizer(settings.optimizer, list(module.parameters()), settings.lr)
            criterion = LOSSES[settings.loss]("mean")

        def batches() -> list[torch.Tensor]:
            if dp is not None:
                return [torch.tensor(indices, dtype=torch.long) for indices in sampler]
            order = torch.randperm(rows, generator=generator)
            return list(order.split(batch_size))

        metrics: list[EpochMetrics] = []
        step = 0
        module.train()
        try:
            for epoch in range(1, settings.epochs + 1):
                for indices in batches():
                    if should_cancel is not None and should_cancel():
                        raise TrainingCancelled(step)
                    optimizer.zero_grad()
                    x, y = features[indices], labels[indices]
                    out = trained(x)
                    with warnings.catch_warnings():
                        # Opacus' backward hooks on the first layer, whose input needs no gradient: expected.
                        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
                        criterion(_shape_output(out, y, settings.loss), y).backward()
                    optimizer.step()
                    step += 1
                    if progress is not None and step % report_every == 0:
                        progress(Progress(step=step, steps=planned_steps, epoch=epoch, metrics=list(metrics)))
                loss, accuracy = _evaluate(module, features, labels, settings.loss)
                metrics.append(EpochMetrics(epoch=epoch, loss=loss, accuracy=accuracy))
                if progress is not None:
                    progress(Progress(step=step, steps=planned_steps, epoch=epoch, metrics=list(metrics)))
        finally:
            if isinstance(trained, GradSampleModule):
                trained.remove_hooks()
                for p in module.parameters():
                    p.grad_sample = None  # type: ignore[attr-defined]

    if dp is not None and dp_optimizer is not None:
        event = dp_sgd_event(sample_rate=sample_rate, noise_multiplier=dp.noise_multiplier, steps=step)
        zeroed = dp_optimizer.zeroed_samples
    else:
        event, zeroed = non_private_event(), 0
    return TrainingResult(
        weights=weights_bytes(module),
        metrics=metrics,
        steps=step,
        sample_rate=sample_rate,
        event=event,
        zeroed_samples=zeroed,
        seconds=time.perf_counter() - started,
    )
