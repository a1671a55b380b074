"""The trainer: a pure function from a built module and tensors to trained weights, metrics and a privacy event.

With DP it is DP-SGD through Opacus' own parts, assembled here so the privacy event is exactly what ran:
Poisson sampling (`UniformWithReplacementSampler` at rate batch_size / rows, ceil(rows / batch_size) steps an
epoch, the plan of `grid_runtime.privacy.dp_sgd_plan`), per-sample gradients (`GradSampleModule`), clipping and
Gaussian noise (`DPOptimizer`). Per-sample gradients that are not finite are zeroed before clipping: a row
that overflows contributes nothing, rather than turning every parameter into NaN (a zero gradient has norm
0 <= C, so the sensitivity and the accounting are unchanged). How many were zeroed is an officer-only figure.

Randomness no user controls. Opacus' ``secure_mode`` in the PrivacyEngine needs ``torchcsprng``, which has no
build for the torch this project uses (the project is archived), so it is not an option. Instead every run
draws its Poisson batches, its DP noise, its shuffling and its dropout masks from generators seeded from
``os.urandom`` (64 bits), re-seeded from ``os.urandom`` before every step, so no seed the user picks or can
learn determines them: replaying a run offline does not reproduce its noise. The noise itself uses
``DPOptimizer(secure_mode=True)`` (the sum of four Gaussian draws, Holohan & Braghin 2021), which closes the
floating-point attacks on a single Gaussian sample. A user's ``seed`` seeds the model's initialisation only
(`grid_runtime.compute.builder.build_module`).

What a failure could tell. So that success or failure is not a bit about a row, the inputs are made
well-formed before training, by maps that depend on declared metadata only (`prepare_inputs`): features and
regression labels are clipped to the bounds the owner declared (NaN to the lower bound), indices into a first
Embedding layer are clamped into its table, and classification rows whose label is not a class (not an integer
in [0, classes), classes = the declared label classes and the model's outputs) are left out of the loss (their
gradient is zero), rather than failing the job.

The function touches no database, files or network; the job layer feeds it tensors, reports progress through
the callback and cancels through the check.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from dp_accounting import DpEvent
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from opacus.validators import ModuleValidator
from torch import nn

from grid_runtime.compute.builder import weights_bytes
from grid_runtime.compute.contracts import CLASSIFICATION_LOSSES, LOSSES, OPTIMIZERS, Loss, Optimizer
from grid_runtime.privacy import dp_sgd_event, dp_sgd_plan, non_private_event

IGNORED_LABEL = -100
"""A classification row whose label is not a class of the model gets this label: the loss leaves it out."""
LOSS_MODULES: dict[str, Callable[[str], nn.Module]] = {
    "cross_entropy": lambda reduction: nn.CrossEntropyLoss(reduction=reduction, ignore_index=IGNORED_LABEL),
    "nll": lambda reduction: nn.NLLLoss(reduction=reduction, ignore_index=IGNORED_LABEL),
    "bce_with_logits": lambda reduction: nn.BCEWithLogitsLoss(reduction=reduction),
    "mse": lambda reduction: nn.MSELoss(reduction=reduction),
    "l1": lambda reduction: nn.L1Loss(reduction=reduction),
    "huber": lambda reduction: nn.HuberLoss(reduction=reduction),
}
assert set(LOSS_MODULES) == set(LOSSES), "every loss in contracts.LOSSES needs a torch module"
OPTIMIZER_CLASSES: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS), "every optimizer in contracts.OPTIMIZERS needs a torch class"
MAX_EPOCHS = 1_000
EVAL_CHUNK = 8_192


def secure_seed() -> int:
    """64 bits from the operating system's CSPRNG: a seed no user chooses or can predict."""
    return int.from_bytes(os.urandom(8), "little")


def secure_generator() -> torch.Generator:
    """A CPU generator seeded from ``os.urandom`` (see the module docstring)."""
    return torch.Generator().manual_seed(secure_seed())


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
    """How to train. There is no seed here: sampling, noise, shuffling and dropout are never seeded by a user
    (a user's seed only seeds the model's initialisation, in `builder.build_module`)."""

    loss: Loss
    optimizer: Optimizer
    lr: float
    epochs: int
    batch_size: int
    dp: DPSettings | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSS_MODULES:
            raise ValueError(f"loss must be one of {sorted(LOSS_MODULES)}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZER_CLASSES:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZER_CLASSES)}, got {self.optimizer!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError("lr must be in (0, 10]")
        if not (1 <= self.epochs <= MAX_EPOCHS):
            raise ValueError(f"epochs must be between 1 and {MAX_EPOCHS}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")


BoundsValue = float | Sequence[float]


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
    return OPTIMIZER_CLASSES[name](params, lr=lr)


def _bound_tensors(bounds: tuple[BoundsValue, BoundsValue], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Declared (lower, upper) as tensors broadcasting over ``like``'s last axis (one value, or one per column)."""
    lower, upper = (torch.as_tensor(b, dtype=like.dtype) for b in bounds)
    return torch.minimum(lower, upper), torch.maximum(lower, upper)


def _clip(values: torch.Tensor, bounds: tuple[BoundsValue, BoundsValue] | None) -> torch.Tensor:
    """Values clipped to the declared bounds, NaN mapped to the lower bound (a fixed per-row map)."""
    if bounds is None:
        return values
    lower, upper = _bound_tensors(bounds, values)
    if lower.dim() == 1 and lower.shape[0] not in (1, values.shape[-1] if values.dim() else 1):
        raise ValueError(f"{lower.shape[0]} declared bounds for rows whose last axis has {values.shape[-1]}")
    values = torch.where(torch.isnan(values), lower, values)
    return torch.clamp(values, min=lower, max=upper)


def _first_embedding(module: nn.Module) -> nn.Embedding | None:
    first = next(iter(module.children()), None) if isinstance(module, nn.Sequential) else None
    return first if isinstance(first, nn.Embedding) else None


def prepare_inputs(
    module: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    loss: str,
    *,
    feature_bounds: tuple[BoundsValue, BoundsValue] | None = None,
    label_bounds: tuple[BoundsValue, BoundsValue] | None = None,
    label_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels the module can train on whatever their values (see the module docstring).

    Raises ValueError only for what the tensors' metadata (row counts, shapes) already says, never for a value.
    """
    if features.dim() < 1 or labels.dim() < 1 or len(features) != len(labels):
        raise ValueError(f"features ({len(features)} rows) and labels ({len(labels)} rows) must have the same rows")
    if len(features) == 0:
        raise ValueError("no rows to train on")
    embedding = _first_embedding(module)
    if embedding is not None:
        indices = features.double() if features.dtype.is_floating_point else features
        if indices.dtype.is_floating_point:
            indices = torch.nan_to_num(indices, nan=0.0).round()
        features = indices.clamp(0, embedding.num_embeddings - 1).long()
    else:
        features = _clip(features.float(), feature_bounds)
    if loss in CLASSIFICATION_LOSSES:
        if labels.dim() > 1 and math.prod(labels.shape[1:]) != 1:
            raise ValueError(f"{loss} needs one class label a row, the labels have rows of shape "
                             f"{list(labels.shape[1:])}")
        with torch.no_grad():
            was_training = module.training
            classes = int(module.eval()(features[:1]).shape[-1])
            module.train(was_training)
        if label_classes is not None:
            classes = min(classes, label_classes)
        values = labels.reshape(-1).double()
        valid = torch.isfinite(values) & (values == values.round()) & (values >= 0) & (values < classes)
        labels = torch.where(valid, values, torch.full_like(values, IGNORED_LABEL)).long()
        return features, labels
    labels = _clip(labels.float(), label_bounds)
    if loss == "bce_with_logits":  # targets are probabilities
        labels = torch.nan_to_num(labels, nan=0.0).clamp(0.0, 1.0)
    return features, labels


@torch.no_grad()
def _evaluate(module: nn.Module, features: torch.Tensor, labels: torch.Tensor, loss: str) -> tuple[float, float | None]:
    was_training = module.training
    module.eval()
    criterion = LOSS_MODULES[loss]("sum")
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


def _reseed(generator: torch.Generator) -> None:
    generator.manual_seed(secure_seed())


def train(
    module: nn.Module,
    features: torch.Tensor,
    labels: torch.Tensor,
    settings: TrainingSettings,
    *,
    feature_bounds: tuple[BoundsValue, BoundsValue] | None = None,
    label_bounds: tuple[BoundsValue, BoundsValue] | None = None,
    label_classes: int | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train `module` in place on (features, labels) and return its weights, metrics, plan and privacy event.

    Without DP: shuffled mini-batches, ceil(rows / batch_size) steps an epoch, the event is non-private.
    With DP: DP-SGD as described in the module docstring; the event is `dp_sgd_event(sample_rate, σ, steps)`
    for the steps that ran. The inputs go through `prepare_inputs` with the declared bounds first.
    `should_cancel` is checked before every step (raises TrainingCancelled); `progress` is called about ten
    times an epoch and after each epoch's metrics.
    """
    started = time.perf_counter()
    features, labels = prepare_inputs(module, features, labels, settings.loss, feature_bounds=feature_bounds,
                                      label_bounds=label_bounds, label_classes=label_classes)
    rows = len(features)
    batch_size = min(settings.batch_size, rows)
    sample_rate, planned_steps = dp_sgd_plan(rows=rows, batch_size=batch_size, epochs=settings.epochs)
    steps_per_epoch = planned_steps // settings.epochs
    report_every = max(1, steps_per_epoch // 10)

    # Nothing below draws from a generator a user seeded: the global generator (dropout) is forked and
    # seeded from os.urandom; batches and noise have their own, re-seeded from os.urandom every step.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(secure_seed())
        batch_generator, noise_generator = secure_generator(), secure_generator()

        dp = settings.dp
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
                generator=noise_generator,
                secure_mode=True,
            )
            sampler = UniformWithReplacementSampler(
                num_samples=rows, sample_rate=sample_rate, generator=batch_generator, steps=steps_per_epoch
            )
        else:
            trained = module
            optimizer = _make_optimizer(settings.optimizer, list(module.parameters()), settings.lr)
        # A sum over the batch: with DP the optimizer divides by the expected batch size; without, the loop
        # divides by the batch's size (a mean that stays finite when every label of a batch is left out).
        criterion = LOSS_MODULES[settings.loss]("sum")

        def batches() -> Iterator[torch.Tensor]:
            if dp is not None:
                for indices in sampler:  # lazily: each step's Poisson draw after the generator was re-seeded
                    yield torch.tensor(indices, dtype=torch.long)
                    _reseed(batch_generator)
                return
            yield from torch.randperm(rows, generator=batch_generator).split(batch_size)
            _reseed(batch_generator)

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
                    batch_loss = criterion(_shape_output(out, y, settings.loss), y)
                    if dp is None:
                        batch_loss = batch_loss / max(1, len(indices))
                    with warnings.catch_warnings():
                        # Opacus' backward hooks on the first layer, whose input needs no gradient: expected.
                        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
                        batch_loss.backward()
                    _reseed(noise_generator)
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
