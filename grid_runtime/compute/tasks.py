"""What runs on a Worker: one job as a Ray task that streams its reports back to the Node.

`run_job(payload)` is a generator (a Ray streaming-generator task). It yields small dicts:

- ``{"type": "started", "node_id", "pid"}`` once it runs;
- ``{"type": "progress", "progress", "epoch", "metrics"}`` while training, and ``{"type": "heartbeat"}`` at least
  every `HEARTBEAT_SECONDS`, so the Node can tell a silent (lost) task from a slow one;
- a last ``{"type": "done", ...}`` with the artifact's object-store key and sha256 (or the statistic's value),
  the metrics and the privacy event of what actually ran; or ``{"type": "error", "message"}``.

The payload is plain JSON built by the Node from validated settings: object-store keys and sha256s of the
inputs, the model spec (a list of allowlisted layers) and the training or statistic settings. Inputs are read
from the object store and checked against their sha256; the module is built from the spec by
`grid_runtime.compute.builder`; the trained parameters are written back as safetensors. No code or pickle from
a user is ever loaded here.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

HEARTBEAT_SECONDS = 2.0
RESULT_PREFIX = "results/"


class InputError(ValueError):
    """An input is missing from the store or does not match its recorded sha256."""


def _read_tensor(store: Any, key: str, sha256: str) -> Any:
    from safetensors.torch import load

    with store.open(key) as reader:
        data = reader.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"the stored object {key} does not match its recorded sha256")
    tensors = load(data)
    if len(tensors) != 1:
        raise InputError(f"the stored object {key} holds {len(tensors)} tensors, expected one")
    return next(iter(tensors.values()))


def _statistic(kind: str, column: Any, params: dict[str, Any], delta: float) -> Any:
    from grid_runtime.compute import statistics

    common = {"epsilon": params["epsilon"], "delta": delta}
    if kind == "count":
        return statistics.count(column, mechanism=params.get("mechanism", "laplace"), **common)
    bounds = params["bounds"]
    if kind in ("sum", "mean"):
        fn = statistics.sum if kind == "sum" else statistics.mean
        return fn(column, bounds=bounds, mechanism=params.get("mechanism", "laplace"), **common)
    if kind == "histogram":
        return statistics.histogram(column, bounds=bounds, bins=params["bins"],
                                    mechanism=params.get("mechanism", "laplace"), **common)
    if kind == "quantiles":
        return statistics.quantiles(column, bounds=bounds, alphas=params["alphas"],
                                    candidates=params.get("candidates", 1000), **common)
    raise ValueError(f"unknown statistic {kind!r}")


def planned_statistic_event(kind: str, params: dict[str, Any], delta: float) -> Any:
    """The privacy event a statistic will have, from its settings alone: the same OpenDP measurement run on
    an empty column (no data is read; the event depends only on the settings)."""
    return _statistic(kind, [], params, delta).event


def _column(tensor: Any, column: int | None) -> Any:
    if tensor.dim() == 1:
        return tensor
    if tensor.dim() == 2:
        index = 0 if column is None else column
        if not 0 <= index < tensor.shape[1]:
            raise ValueError(f"column {index} is outside the tensor's {tensor.shape[1]} columns")
        return tensor[:, index]
    raise ValueError(f"statistics need a 1-D or 2-D tensor, got {tensor.dim()} dimensions")


def _train(payload: dict[str, Any], store: Any, reports: queue.Queue[dict[str, Any]],
           cancel: threading.Event) -> dict[str, Any]:
    from grid_runtime.compute import builder, training
    from grid_runtime.privacy import event_to_dict

    inputs = payload["inputs"]
    features = _read_tensor(store, inputs["features"]["key"], inputs["features"]["sha256"])
    labels = _read_tensor(store, inputs["labels"]["key"], inputs["labels"]["sha256"])
    weights = None
    if payload.get("weights"):
        with store.open(payload["weights"]["key"]) as reader:
            weights = reader.read()
    module = builder.build_module(payload["spec"], weights)
    s = payload["settings"]
    dp = training.DPSettings(noise_multiplier=s["dp"]["noise_multiplier"], max_grad_norm=s["dp"]["max_grad_norm"]
                             ) if s.get("dp") else None
    settings = training.TrainingSettings(loss=s["loss"], optimizer=s["optimizer"], lr=s["lr"], epochs=s["epochs"],
                                         batch_size=s["batch_size"], dp=dp, seed=s.get("seed"))

    def progress(p: training.Progress) -> None:
        reports.put({"type": "progress", "progress": min(1.0, p.step / max(1, p.steps)), "epoch": p.epoch,
                     "metrics": [vars(m) for m in p.metrics]})

    result = training.train(module, features, labels, settings, progress=progress, should_cancel=cancel.is_set)
    key = f"{RESULT_PREFIX}{uuid.uuid4().hex}.safetensors"
    stored = store.put_stream(key, io.BytesIO(result.weights))
    return {"type": "done", "kind": "model", "object_key": key, "sha256": stored.sha256, "size": stored.size,
            "metrics": [vars(m) for m in result.metrics], "event": event_to_dict(result.event),
            "steps": result.steps, "sample_rate": result.sample_rate, "zeroed_samples": result.zeroed_samples,
            "seconds": result.seconds}


def _statistics(payload: dict[str, Any], store: Any) -> dict[str, Any]:
    from grid_runtime.privacy import event_to_dict

    source = payload["inputs"]["column"]
    tensor = _read_tensor(store, source["key"], source["sha256"])
    params = payload["settings"]
    outcome = _statistic(params["statistic"], _column(tensor, params.get("column")), params, payload["delta"])
    return {"type": "done", "kind": "statistic", "value": outcome.value, "mechanism": outcome.mechanism,
            "event": event_to_dict(outcome.event), "noise_scale": outcome.noise_scale, "metrics": []}


def run_job(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run one job (see the module docstring); a Ray streaming generator on a Worker."""
    import ray
    import torch

    from grid_runtime.core.storage import open_store

    torch.set_num_threads(max(1, int(payload.get("cpus", 1))))  # the task's CPUs, not the machine's
    yield {"type": "started", "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
    store = open_store(payload["store_url"], payload.get("store_options") or {})
    reports: queue.Queue[dict[str, Any]] = queue.Queue()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            if payload["kind"] == "train":
                outcome.update(_train(payload, store, reports, cancel))
            else:
                outcome.update(_statistics(payload, store))
        except Exception as exc:  # noqa: BLE001 - reported to the Node as the job's failure
            outcome.update(type="error", message=f"{type(exc).__name__}: {str(exc)[:1500]}")

    thread = threading.Thread(target=work, name=f"grid-job-{payload.get('job_id')}", daemon=True)
    thread.start()
    try:
        last = time.monotonic()
        while thread.is_alive() or not reports.empty():
            try:
                report = reports.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() - last >= HEARTBEAT_SECONDS:
                    last = time.monotonic()
                    yield {"type": "heartbeat"}
                continue
            last = time.monotonic()
            yield report
        thread.join()
        yield outcome or {"type": "error", "message": "the job ended without a result"}
    finally:
        cancel.set()  # ray.cancel interrupts the generator; stop the training thread at its next step
