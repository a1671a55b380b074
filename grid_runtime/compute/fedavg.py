"""Federated averaging, streaming: each client's update is checked and folded into one running sum on disk.

Torch-free (numpy and safetensors' numpy reader), so the Node's API process aggregates without importing torch;
only central DP's Gaussian noise imports torch, for the same secure generator DP-SGD uses
(``training.secure_generator``: seeded from ``os.urandom``, never from a user).

- ``Layout``: the parameters of a model, by name and shape, in a fixed order (the state dict's). An update must
  hold exactly these names with exactly these shapes, as float32 or float64, every value finite.
- ``Accumulator``: a file holding ``size + 2`` float64 values (the weighted sum of the updates, the sum of the
  weights, and the number of updates folded), opened as a memory map, so memory stays the same whatever the
  number of clients: one update and the running sum, never all the updates. Without a path it is an array in
  memory (a Worker's, for the one cycle it aggregates).
- ``aggregate_stored``: a cycle whose updates were stored one object each (``CycleAggregation``), streamed one at a
  time into an in-memory ``Accumulator``, finished and written as the new checkpoint. The same code runs in a
  Worker's Ray task (``compute.tasks.aggregate_fl_cycle``) and, as the fallback, on the Node; it folds the updates
  in the order given, with the same arithmetic as ``Accumulator.add`` on the Node, so both give the same bytes.
- ``finish``: the new parameters. Without DP: checkpoint + Σ wᵢ·Δᵢ / Σ wᵢ (FedAvg weighted by the examples each
  client reported). With central DP each update is clipped to L2 norm C as it is folded, every client weighs 1
  (a weight a client reports would change the sensitivity), and the sum gets Gaussian noise of std σ·C before it
  is divided by the number of updates: the Gaussian mechanism on a sum whose L2 sensitivity is C for adding or
  removing one client (DP-FedAvg, McMahan et al. 2018, with a fixed number of clients per cycle).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

ACCEPTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class UpdateError(ValueError):
    """An update the Node refuses (not safetensors, wrong names or shapes, not floats, not finite)."""


@dataclass(frozen=True)
class Layout:
    """The model's parameters in order: ``(name, shape)`` pairs."""

    parameters: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def from_json(cls, data: list[list[Any]]) -> Layout:
        return cls(tuple((str(name), tuple(int(d) for d in shape)) for name, shape in data))

    def to_json(self) -> list[list[Any]]:
        return [[name, list(shape)] for name, shape in self.parameters]

    @property
    def size(self) -> int:
        return sum(math.prod(shape) for _, shape in self.parameters)

    def parts(self, tensors: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The tensors as flat arrays (views, no copy) in this layout's order (they must match it)."""
        return [tensors[name].reshape(-1) for name, _ in self.parameters]

    def flatten(self, tensors: dict[str, np.ndarray]) -> np.ndarray:
        """The tensors as one float64 vector in this layout's order (they must match it)."""
        return np.concatenate([np.asarray(tensors[name], dtype=np.float64).reshape(-1)
                               for name, _ in self.parameters]) if self.parameters else np.zeros(0)

    def unflatten(self, vector: np.ndarray) -> dict[str, np.ndarray]:
        """One float32 array per parameter, from a vector in this layout's order."""
        out: dict[str, np.ndarray] = {}
        offset = 0
        for name, shape in self.parameters:
            count = math.prod(shape)
            out[name] = np.ascontiguousarray(vector[offset:offset + count], dtype=np.float32).reshape(shape)
            offset += count
        return out


def read_tensors(data: bytes, layout: Layout, *, what: str = "update",
                 max_abs: float | None = None) -> dict[str, np.ndarray]:
    """Parse safetensors bytes (no pickle) and check them against the layout: names, shapes, float dtype,
    finite values (and at most ``max_abs`` in magnitude when given). Raises ``UpdateError`` saying what is
    wrong."""
    try:
        tensors = load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        raise UpdateError(f"the {what} is not a valid safetensors file: {exc}") from None
    expected = dict(layout.parameters)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:10])}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected[:10])}"] if unexpected else [])
        raise UpdateError(f"the {what} does not match the model's parameters: " + "; ".join(parts))
    for name, shape in layout.parameters:
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise UpdateError(f"the {what} does not match the model: {name} has shape {list(tensor.shape)}, "
                              f"the model needs {list(shape)}")
        if tensor.dtype not in ACCEPTED_DTYPES:
            raise UpdateError(f"the {what}'s {name} has dtype {tensor.dtype}; send float32 or float64")
        if not tensor.size:
            continue
        low, high = float(tensor.min()), float(tensor.max())  # NaN propagates through min and max
        if not (math.isfinite(low) and math.isfinite(high)):
            raise UpdateError(f"the {what}'s {name} has values that are not finite (NaN or infinity)")
        if max_abs is not None and max(-low, high) > max_abs:
            raise UpdateError(f"the {what}'s {name} has values above {max_abs:g} in magnitude")
    return tensors


def to_safetensors(layout: Layout, vector: np.ndarray) -> bytes:
    """A parameter vector as safetensors bytes (float32), in the layout's names and shapes."""
    return save_safetensors(layout.unflatten(vector))


class Accumulator:
    """The running sum of one cycle, in a file (float64): ``[Σ wᵢ·Δᵢ ..., Σ wᵢ, count]``; in memory when
    ``path`` is None."""

    _map: np.ndarray

    def __init__(self, path: Path | None, size: int) -> None:
        self.path = path
        self.size = size
        if path is None:
            self._map = np.zeros(size + 2, dtype=np.float64)
            return
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, (size + 2) * 8)  # zeros, without writing them
            finally:
                os.close(fd)
        self._map = np.memmap(path, dtype=np.float64, mode="r+", shape=(size + 2,))

    @property
    def total_weight(self) -> float:
        return float(self._map[self.size])

    @property
    def count(self) -> int:
        return int(self._map[self.size + 1])

    def add(self, parts: list[np.ndarray], *, weight: float, clip_norm: float | None = None) -> None:
        """Fold one update in, given as flat arrays in the layout's order: ``weight·Δ`` (``Δ`` first scaled to L2
        norm at most ``clip_norm`` when given).

        No ``msync`` per update: the map is shared, so what is added is in the page cache at once and survives
        the Node's process; only the machine's crash could lose it (then the cycle's sum is incomplete, never
        double-counted: its own weight and count are in the same file)."""
        if sum(p.size for p in parts) != self.size:
            raise UpdateError(f"the update has {sum(p.size for p in parts)} values, the model {self.size}")
        scale = float(weight)
        if clip_norm is not None:
            norm = math.sqrt(sum(float(np.dot(p, p)) for p in parts))
            if norm > clip_norm:
                scale *= clip_norm / norm
        offset = 0
        for part in parts:
            target = self._map[offset:offset + part.size]
            np.add(target, part * part.dtype.type(scale), out=target)
            offset += part.size
        self._map[self.size] += weight
        self._map[self.size + 1] += 1

    def finish(self, checkpoint: np.ndarray, *, noise_std: float | None = None) -> np.ndarray:
        """The new parameters: the checkpoint plus the (noised) weighted average of the deltas."""
        if self.count == 0:
            raise UpdateError("no update was folded in")
        total = np.array(self._map[:self.size], dtype=np.float64)
        if noise_std is not None:
            total += gaussian_noise(self.size, noise_std)
        return checkpoint.astype(np.float64) + total / self.total_weight

    def close(self) -> None:
        del self._map  # unmapped; what was added stays in the file (see ``add``)


def gaussian_noise(size: int, std: float) -> np.ndarray:
    """``size`` draws of N(0, std²) from the secure generator DP-SGD uses (seeded from ``os.urandom``)."""
    import torch

    from grid_runtime.compute.training import secure_generator

    return torch.normal(0.0, std, size=(size,), generator=secure_generator(), dtype=torch.float64).numpy()


class StoredInputError(UpdateError):
    """A stored checkpoint or update is missing or does not match what the Node recorded."""


@dataclass(frozen=True)
class CycleAggregation:
    """What aggregating one cycle from the object store needs (all public to the Node and its Workers): the
    model's layout, the checkpoint the cycle started from (key and sha256), each stored update's key and weight in
    the order they were accepted, the clipping norm and noise's standard deviation under central DP, the bound every
    value was checked against, and the key to write the new checkpoint to."""

    process_id: int
    cycle_id: int
    parameters: list[list[Any]]
    checkpoint_key: str
    checkpoint_sha256: str
    updates: list[tuple[str, float]]
    output_key: str
    clip_norm: float | None = None
    noise_std: float | None = None
    max_abs: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CycleAggregation:
        return cls(**{**data, "updates": [(str(key), float(weight)) for key, weight in data["updates"]]})


def _read(store: Any, key: str, what: str) -> bytes:
    try:
        with store.open(key) as reader:
            return bytes(reader.read())
    except (FileNotFoundError, OSError) as exc:
        raise StoredInputError(f"the {what} {key} cannot be read: {type(exc).__name__}") from None


def aggregate_stored(store: Any, job: CycleAggregation) -> dict[str, Any]:
    """Aggregate a cycle whose updates are in ``store`` (see ``CycleAggregation``): stream the updates one at a time
    into an in-memory sum (memory: the sum and one update, whatever their number), add the noise (central DP),
    write the new checkpoint to ``job.output_key``. Returns its ``key``, ``sha256`` and ``size``, how many updates
    were folded and the seconds it took."""
    started = time.perf_counter()
    layout = Layout.from_json(job.parameters)
    checkpoint = _read(store, job.checkpoint_key, "checkpoint")
    if hashlib.sha256(checkpoint).hexdigest() != job.checkpoint_sha256:
        raise StoredInputError(f"the checkpoint {job.checkpoint_key} does not match its recorded sha256")
    current = layout.flatten(read_tensors(checkpoint, layout, what="checkpoint"))
    del checkpoint
    running = Accumulator(None, layout.size)
    for key, weight in job.updates:
        parts = layout.parts(read_tensors(_read(store, key, "update"), layout, max_abs=job.max_abs))
        running.add(parts, weight=weight, clip_norm=job.clip_norm)
        del parts
    new = running.finish(current, noise_std=job.noise_std)
    stored = store.put_stream(job.output_key, io.BytesIO(to_safetensors(layout, new)))
    return {"key": job.output_key, "sha256": stored.sha256, "size": stored.size, "updates": running.count,
            "seconds": time.perf_counter() - started}


__all__ = ["Accumulator", "CycleAggregation", "Layout", "StoredInputError", "UpdateError", "aggregate_stored",
           "gaussian_noise", "read_tensors", "to_safetensors"]
