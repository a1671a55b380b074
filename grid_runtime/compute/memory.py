"""How much memory a training job needs on a Worker, estimated from its public settings without torch.

The Node admits a model spec only if this estimate fits a Worker's declared memory
(``GRID_NODE_WORKER_MEMORY_BYTES``), and gives the job's Ray task that much memory, so a few hundred bytes of
JSON can never ask a Worker for tens of gigabytes. The estimate is deliberately simple and on the high side:

- parameters, their gradients and the optimizer's state (Adam keeps two moments per parameter);
- activations: every layer's output for a batch (kept for the backward pass), their gradients for the
  largest one, and the input batch;
- under DP-SGD, Opacus' per-sample gradients: one gradient per parameter *per row of the batch*
  (parameters x batch size), which dominates for wide layers (``Linear(3, 65536) -> Linear(65536, 300)`` at
  batch 1,000 needs about 74 GiB);
- the job's input tensors, which the Worker holds while it trains, and a fixed allowance for the runtime.

Everything counts 4 bytes per value (float32, what the Node trains in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grid_runtime.compute.spec import Conv1d, Conv2d, Embedding, GroupNorm, LayerNorm, Linear, ModelSpec

BYTES_PER_VALUE = 4
RUNTIME_OVERHEAD_BYTES = 256 * 1024**2
"""torch's own allocations and the worker process, independent of the model."""
_OPTIMIZER_STATES = {"sgd": 0, "adam": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """The parts of a training job's peak memory, in bytes."""

    parameters: int
    optimizer_state: int
    activations: int
    per_sample_gradients: int
    inputs: int
    runtime: int = RUNTIME_OVERHEAD_BYTES

    @property
    def total(self) -> int:
        return (self.parameters + self.optimizer_state + self.activations + self.per_sample_gradients
                + self.inputs + self.runtime)

    def breakdown(self) -> dict[str, int]:
        return {"parameters_and_gradients": self.parameters, "optimizer_state": self.optimizer_state,
                "activations": self.activations, "per_sample_gradients": self.per_sample_gradients,
                "inputs": self.inputs, "runtime": self.runtime, "total": self.total}

    def largest_part(self) -> str:
        parts = {k: v for k, v in self.breakdown().items() if k != "total"}
        return max(parts, key=lambda k: parts[k]).replace("_", " ")


def _row_sizes_without_shapes(spec: ModelSpec) -> list[int]:
    """Per-row output sizes when the input shape is unknown: what the layers themselves say."""
    sizes: list[int] = []
    current = 1
    for layer in spec.layers:
        if isinstance(layer, Linear):
            current = layer.out_features
        elif isinstance(layer, Embedding):
            current = layer.embedding_dim
        elif isinstance(layer, Conv1d | Conv2d):
            current = layer.out_channels
        elif isinstance(layer, LayerNorm):
            current = math.prod(layer.normalized_shape)
        elif isinstance(layer, GroupNorm):
            current = layer.num_channels
        sizes.append(current)
    return sizes


def _row_sizes(spec: ModelSpec) -> tuple[int, list[int]]:
    """(values in one input row, values in each layer's output for one row)."""
    shapes = spec.output_shapes()
    if spec.input_shape is None or any(s is None for s in shapes):
        first = spec.layers[0]
        width = first.in_features if isinstance(first, Linear) else 1
        return width, _row_sizes_without_shapes(spec)
    return math.prod(spec.input_shape), [math.prod(s) for s in shapes if s is not None]


def estimate_training(spec: ModelSpec, *, batch_size: int, dp: bool, optimizer: str = "sgd",
                      input_bytes: int = 0) -> MemoryEstimate:
    """Peak memory of training ``spec`` at ``batch_size`` (with DP-SGD if ``dp``) on one Worker."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch = batch_size  # under Poisson sampling, the expected batch
    parameters = spec.parameter_count()
    input_row, output_rows = _row_sizes(spec)
    kept = input_row + sum(output_rows)  # forward outputs saved for the backward pass
    largest = max([input_row, *output_rows])  # the gradient flowing back through the widest layer
    return MemoryEstimate(
        parameters=2 * parameters * BYTES_PER_VALUE,
        optimizer_state=_OPTIMIZER_STATES.get(optimizer, 2) * parameters * BYTES_PER_VALUE,
        activations=(kept + 2 * largest) * batch * BYTES_PER_VALUE,
        per_sample_gradients=parameters * batch * BYTES_PER_VALUE if dp else 0,
        inputs=max(0, input_bytes),
    )


def describe_bytes(value: int) -> str:
    """``value`` in the largest binary unit that keeps it at or above 1 (e.g. ``74.2 GiB``)."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def refusal(estimate: MemoryEstimate, worker_memory_bytes: int) -> str | None:
    """Why a job with this estimate cannot be admitted on Workers of ``worker_memory_bytes``, or None."""
    if estimate.total <= worker_memory_bytes:
        return None
    return (f"this job needs about {describe_bytes(estimate.total)} on a Worker (mostly "
            f"{estimate.largest_part()}), more than the {describe_bytes(worker_memory_bytes)} a Worker has; "
            "use a smaller batch_size or a smaller model")


__all__ = ["MemoryEstimate", "describe_bytes", "estimate_training", "refusal"]
