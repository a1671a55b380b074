"""What runs on a Worker: one job as a Ray task that streams its reports back to the Node.

`run_job(payload)` is a generator (a Ray streaming-generator task). Its payload is a
`grid_runtime.compute.contracts.TrainingPayload` or `StatisticsPayload` as JSON, and it yields the contract's
reports as JSON dicts:

- ``Started`` once it runs;
- ``ProgressReport`` while training, and ``Heartbeat`` at least every `HEARTBEAT_SECONDS`, so the Node can tell
  a silent (lost) task from a slow one;
- a last ``ModelDone`` (the artifact's object-store key and sha256) or ``StatisticDone`` (the value), with the
  metrics and the privacy event of what actually ran; or ``Failed`` with a stable ``ErrorCode`` and an
  officer-only detail. The exception text never goes anywhere but that detail.

Inputs are read from the object store and checked against their sha256; the module is built from the spec by
`grid_runtime.compute.builder` (its initialisation seeded by the user's seed, if any, and nothing else); the
trained parameters are written back as safetensors. No code or pickle from a user is ever loaded here.
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
from dataclasses import dataclass
from typing import Any

from grid_runtime.compute.contracts import (
    Bounds,
    EpochMetric,
    ErrorCode,
    Failed,
    Heartbeat,
    ModelDone,
    ProgressReport,
    Started,
    StatisticConfig,
    StatisticDone,
    StatisticsPayload,
    TrainingPayload,
    parse_payload,
)

HEARTBEAT_SECONDS = 2.0
RESULT_PREFIX = "results/"


class InputError(ValueError):
    """An input is missing from the store or does not match its recorded sha256."""


def _read_tensor(store: Any, key: str, sha256: str) -> Any:
    from safetensors.torch import load

    try:
        with store.open(key) as reader:
            data = reader.read()
    except (FileNotFoundError, OSError) as exc:
        raise InputError(f"the stored object {key} cannot be read: {type(exc).__name__}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"the stored object {key} does not match its recorded sha256")
    tensors = load(data)
    if len(tensors) != 1:
        raise InputError(f"the stored object {key} holds {len(tensors)} tensors, expected one")
    return next(iter(tensors.values()))


def _statistic(kind: str, column: Any, params: dict[str, Any], delta: float) -> Any:
    from grid_runtime.compute import statistics

    common = {"epsilon": params["epsilon"], "delta": delta}
    mechanism: Any = params.get("mechanism") or "laplace"  # checked by the statistic
    if kind == "count":
        return statistics.count(column, mechanism=mechanism, **common)
    bounds = params["bounds"]
    if kind in ("sum", "mean"):
        fn = statistics.sum if kind == "sum" else statistics.mean
        return fn(column, bounds=bounds, mechanism=mechanism, **common)
    if kind == "histogram":
        return statistics.histogram(column, bounds=bounds, bins=params["bins"], mechanism=mechanism, **common)
    if kind == "quantiles":
        return statistics.quantiles(column, bounds=bounds, alphas=params["alphas"],
                                    candidates=params.get("candidates") or 1000, **common)
    raise ValueError(f"unknown statistic {kind!r}")


MULTI_COLUMN_STATISTICS = ("sum", "mean")
"""Statistics one job may compute over several columns at once (one value a column, one composed event)."""


@dataclass(frozen=True)
class ColumnsOutcome:
    """Several columns' statistics released together: one value a column, their events composed into one."""

    value: list[Any]
    mechanism: str
    event: Any
    noise_scale: list[Any]


def _per_column(kind: str, tensor: Any, params: dict[str, Any], delta: float) -> ColumnsOutcome:
    """``kind`` on each of ``params["columns"]`` with its own declared bounds, each at ``params["epsilon"]``;
    the job's event is the composition of the columns' events (dp-accounting composes them, so the charge is
    the RDP sum, not a worst-case sum of ε's). ``tensor=None`` plans: the events only, from empty columns."""
    from grid_runtime.privacy import composed_event

    columns, bounds = params["columns"], params["column_bounds"]
    if kind not in MULTI_COLUMN_STATISTICS:
        raise ValueError(f"only {', '.join(MULTI_COLUMN_STATISTICS)} take several columns, not {kind!r}")
    if not columns or len(columns) != len(bounds):
        raise ValueError("give one declared bound for each column")
    outcomes = [_statistic(kind, [] if tensor is None else _column(tensor, index),
                           {**params, "bounds": list(bound)}, delta)
                for index, bound in zip(columns, bounds, strict=True)]
    return ColumnsOutcome(value=[o.value for o in outcomes], mechanism=outcomes[0].mechanism,
                          event=composed_event([o.event for o in outcomes]),
                          noise_scale=[o.noise_scale for o in outcomes])


def planned_statistic_event(kind: str, params: dict[str, Any], delta: float) -> Any:
    """The privacy event a statistic will have, from its settings alone: the same OpenDP measurement run on
    an empty column (no data is read; the event depends only on the settings). With ``columns``, the
    composition of one such event a column (`_per_column`)."""
    if params.get("columns") is not None:
        return _per_column(kind, None, params, delta).event
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


def _bounds(bounds: Bounds | None) -> tuple[Any, Any] | None:
    return None if bounds is None else (bounds.lower, bounds.upper)


def _train(payload: TrainingPayload, store: Any, reports: queue.Queue[dict[str, Any]],
           cancel: threading.Event) -> ModelDone:
    from grid_runtime.compute import builder, training
    from grid_runtime.privacy import event_to_dict

    inputs = payload.inputs
    features = _read_tensor(store, inputs.features.key, inputs.features.sha256)
    labels = _read_tensor(store, inputs.labels.key, inputs.labels.sha256)
    weights = None
    if payload.weights is not None:
        try:
            with store.open(payload.weights.key) as reader:
                weights = reader.read()
        except (FileNotFoundError, OSError) as exc:
            raise InputError(f"the initial weights cannot be read: {type(exc).__name__}") from None
        if hashlib.sha256(weights).hexdigest() != payload.weights.sha256:
            raise InputError("the initial weights do not match their recorded sha256")
    s = payload.settings
    module = builder.build_module(payload.spec, weights, seed=s.seed)  # the user's seed: initialisation only
    dp = training.DPSettings(noise_multiplier=s.dp.noise_multiplier, max_grad_norm=s.dp.max_grad_norm
                             ) if s.dp is not None else None
    settings = training.TrainingSettings(loss=s.loss, optimizer=s.optimizer, lr=s.lr, epochs=s.epochs,
                                         batch_size=s.batch_size, dp=dp)

    def metrics_of(items: list[training.EpochMetrics]) -> list[EpochMetric]:
        return [EpochMetric(epoch=m.epoch, loss=m.loss, accuracy=m.accuracy) for m in items]

    def progress(p: training.Progress) -> None:
        report = ProgressReport(progress=min(1.0, p.step / max(1, p.steps)), epoch=p.epoch,
                                metrics=metrics_of(p.metrics))
        reports.put(report.model_dump(mode="json"))

    result = training.train(module, features, labels, settings, feature_bounds=_bounds(inputs.features.bounds),
                            label_bounds=_bounds(inputs.labels.bounds), label_classes=payload.label_classes,
                            progress=progress, should_cancel=cancel.is_set)
    key = f"{RESULT_PREFIX}{uuid.uuid4().hex}.safetensors"
    stored = store.put_stream(key, io.BytesIO(result.weights))
    return ModelDone(object_key=key, sha256=stored.sha256, size=stored.size, metrics=metrics_of(result.metrics),
                     event=event_to_dict(result.event), steps=result.steps, sample_rate=result.sample_rate,
                     zeroed_samples=result.zeroed_samples, seconds=result.seconds)


def _statistics(payload: StatisticsPayload, store: Any) -> StatisticDone:
    from grid_runtime.privacy import event_to_dict

    source = payload.inputs.column
    tensor = _read_tensor(store, source.key, source.sha256)
    params: StatisticConfig = payload.settings
    if params.columns is not None:
        outcome: Any = _per_column(params.statistic, tensor, params.model_dump(), payload.delta)
    else:
        outcome = _statistic(params.statistic, _column(tensor, params.column), params.model_dump(), payload.delta)
    return StatisticDone(value=outcome.value, mechanism=outcome.mechanism, event=event_to_dict(outcome.event),
                         noise_scale=outcome.noise_scale)


def error_code_of(exc: BaseException) -> ErrorCode:
    """The stable code of a failure on a Worker, from the exception's type alone (never from its text, which
    can quote private data; and the classes below are raised for reasons that do not depend on values)."""
    if isinstance(exc, InputError):
        return ErrorCode.input_invalid
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return ErrorCode.out_of_memory
    if isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc)):
        return ErrorCode.out_of_memory
    return ErrorCode.internal


def failure_of(exc: BaseException) -> Failed:
    """The report of a failed job: a code anyone may read, the exception for officers only."""
    return Failed(error_code=error_code_of(exc), error_detail=f"{type(exc).__name__}: {str(exc)[:1500]}")


def warm_up() -> dict[str, Any]:
    """Make the Ray worker process this runs in ready for jobs: import what a job imports (torch, opacus,
    dp-accounting with scipy, OpenDP, safetensors, the object store's fsspec) and run one tiny forward and backward
    pass. Ray keeps an idle worker process alive and hands it the driver's next task on that Worker, so the first
    job there starts warm (`cluster.WorkerWarmer` runs this once per process a Worker can run jobs in). Returns
    the process's pid and Ray node, and the wall and CPU seconds the warm-up took."""
    started, cpu = time.perf_counter(), time.process_time()
    import ray
    import torch
    from safetensors.torch import load  # noqa: F401

    from grid_runtime.compute import builder, statistics, training  # noqa: F401
    from grid_runtime.core.storage import open_store  # noqa: F401

    model = torch.nn.Linear(4, 2)
    model(torch.zeros(3, 4)).sum().backward()
    return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
            "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu}


def aggregate_fl_cycle(payload: dict[str, Any], store_url: str, store_options: dict[str, Any]) -> dict[str, Any]:
    """Aggregate one federated-learning cycle on a Worker (docs/fl.md, "Where"): its stored updates streamed one at
    a time into the average (`fedavg.aggregate_stored`, central DP's noise drawn here from the trainer's secure
    generator), the new checkpoint written to the object store. Returns the checkpoint's key, sha256 and size, the
    number of updates folded, the seconds taken, and the Ray node and pid it ran on. A Ray task (no retries of
    Ray's own: the Node decides, `grid_runtime.node.fl.aggregation`)."""
    import ray

    from grid_runtime.compute import fedavg
    from grid_runtime.core.storage import open_store

    done = fedavg.aggregate_stored(open_store(store_url, store_options), fedavg.CycleAggregation.from_json(payload))
    return {**done, "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}


def run_job(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run one job (see the module docstring); a Ray streaming generator on a Worker."""
    import ray
    import torch

    from grid_runtime.core.storage import open_store

    yield Started(node_id=ray.get_runtime_context().get_node_id(), pid=os.getpid()).model_dump(mode="json")
    try:
        job = parse_payload(payload)
    except ValueError as exc:  # pydantic's ValidationError: the Node and the Worker disagree on the contract
        yield Failed(error_code=ErrorCode.internal,
                     error_detail=f"the Worker cannot read the job's payload: {exc}"[:1500]).model_dump(mode="json")
        return
    torch.set_num_threads(max(1, int(job.cpus)))  # the task's CPUs, not the machine's
    reports: queue.Queue[dict[str, Any]] = queue.Queue()
    cancel = threading.Event()
    outcome: list[dict[str, Any]] = []

    def work() -> None:
        try:
            store = open_store(job.store_url, job.store_options)
            done = _train(job, store, reports, cancel) if isinstance(job, TrainingPayload) else _statistics(job, store)
            outcome.append(done.model_dump(mode="json"))
        except BaseException as exc:  # noqa: BLE001 - reported to the Node as the job's failure
            outcome.append(failure_of(exc).model_dump(mode="json"))

    thread = threading.Thread(target=work, name=f"grid-job-{job.job_id}", daemon=True)
    thread.start()
    try:
        last = time.monotonic()
        while thread.is_alive() or not reports.empty():
            try:
                report = reports.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() - last >= HEARTBEAT_SECONDS:
                    last = time.monotonic()
                    yield Heartbeat().model_dump(mode="json")
                continue
            last = time.monotonic()
            yield report
        thread.join()
        yield outcome[0] if outcome else Failed(
            error_code=ErrorCode.internal, error_detail="the job ended without a result").model_dump(mode="json")
    finally:
        cancel.set()  # ray.cancel interrupts the generator; stop the training thread at its next step
