"""The contract between the Node and its Workers: what a job's task is handed and what it reports back.

Torch-free (pydantic only), so the Node's API process, the runner and the SDK can import it without torch.

- The Node builds a ``TrainingPayload`` or a ``StatisticsPayload`` from a job it admitted (``runner.py``) and
  sends it as JSON (``payload.model_dump(mode="json")``); the Worker parses it back with ``parse_payload``.
- The Worker yields reports (``Started``, ``Heartbeat``, ``ProgressReport``, ``ModelDone``/``StatisticDone``,
  ``Failed``) as JSON dicts; the Node parses each with ``parse_report``. A report that does not parse is the
  Worker's failure (``ErrorCode.internal``), never a crash of the monitor.

Who may read what: a field marked ``officer_only`` (``OFFICER_ONLY_FIELDS``) is a function of private data
(per-epoch metrics, the count of rows whose gradient was zeroed, the run time, a failure's detail). It is
stored for compliance officers and never shown to the job's owner before a release; the public view of a
failure is its ``ErrorCode`` and ``PUBLIC_ERROR_MESSAGES[code]``, the same text for every job.

This module is also the one source for the choices a training job takes (``LOSSES``, ``OPTIMIZERS``,
``STATISTICS``): the API schema, the options endpoint, the trainer and the SDK derive theirs from it.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

# ---- the size of a model (the API schema bounds initial weights with it before the spec is even parsed) ----

MAX_PARAMETERS = 20_000_000
MAX_WEIGHTS_BYTES = 4 * MAX_PARAMETERS + 1_000_000  # float32 parameters plus the safetensors header

# ---- the choices a job takes (one source) ---------------------------------------------------------------

Loss = Literal["cross_entropy", "nll", "bce_with_logits", "mse", "l1", "huber"]
Optimizer = Literal["sgd", "adam"]
Statistic = Literal["count", "sum", "mean", "histogram", "quantiles"]
Mechanism = Literal["laplace", "gaussian"]

LOSSES: tuple[str, ...] = get_args(Loss)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
STATISTICS: tuple[str, ...] = get_args(Statistic)
MECHANISMS: tuple[str, ...] = get_args(Mechanism)
CLASSIFICATION_LOSSES: frozenset[str] = frozenset({"cross_entropy", "nll"})
"""Losses whose labels are class indices: rows whose label is not a class of the model are left out."""
BOUNDED_STATISTICS: frozenset[str] = frozenset({"sum", "mean", "histogram", "quantiles"})
"""Statistics that need the bounds the owner declared."""

MAX_INITIAL_WEIGHT = 1e4
"""Initial weights must satisfy |w| <= this after the cast to the training dtype (float32): larger ones are
refused at admission. Huge weights turn rows into overflows a scientist could count (see docs/jobs.md)."""

ERROR_DETAIL_CHARS = 2000


# ---- failures ------------------------------------------------------------------------------------------


class ErrorCode(StrEnum):
    """Why a job failed, as its owner reads it. Stable: clients may branch on it."""

    input_invalid = "input_invalid"  # an input is missing from the store or is not what was admitted
    out_of_memory = "out_of_memory"  # the Worker ran out of memory
    non_finite = "non_finite"  # the computation produced no finite result
    worker_lost = "worker_lost"  # the Worker died or went silent, on every attempt allowed
    timeout = "timeout"  # the job passed its run-time limit
    node_stopped = "node_stopped"  # the Node stopped or restarted while the job ran
    internal = "internal"  # anything else


PUBLIC_ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.input_invalid: "an input of the job could not be read as it was admitted; an officer can read why",
    ErrorCode.out_of_memory: "the job ran out of memory on a Worker; try a smaller model or batch size",
    ErrorCode.non_finite: "the job failed on a Worker; an officer can read why",
    ErrorCode.worker_lost: "the Worker running the job was lost; submit it again",
    ErrorCode.timeout: "the job passed its run-time limit",
    ErrorCode.node_stopped: "the Node stopped while the job ran; submit it again",
    ErrorCode.internal: "the job failed on a Worker; an officer can read why",
}
"""The only failure text a job's owner reads: it depends on the code alone, never on the data."""
assert set(PUBLIC_ERROR_MESSAGES) == set(ErrorCode)

OFFICER_ONLY_FIELDS: frozenset[str] = frozenset(
    {"metrics", "zeroed_samples", "seconds", "error_detail"}
)
"""Report fields that are functions of private data: stored for officers, never shown to a job's owner."""


def _officer_only(description: str) -> Any:
    return Field(description=description, json_schema_extra={"officer_only": True})


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- what the Node hands a Worker ----------------------------------------------------------------------


class StoredObject(_Contract):
    """An object in the Node's store, with the sha256 it must match."""

    key: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Bounds(_Contract):
    """Bounds the owner declared for a tensor: one value for every column, or one per column (last axis)."""

    lower: float | list[float]
    upper: float | list[float]

    @field_validator("lower", "upper")
    @classmethod
    def _finite(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if not values or not all(math.isfinite(v) for v in values):
            raise ValueError("bounds must be finite numbers")
        return value


class StoredInput(StoredObject):
    """A tensor a job reads: where it is, what it must hash to, and the bounds its owner declared (if any)."""

    role: str = Field(max_length=64)
    bounds: Bounds | None = None


class DPConfig(_Contract):
    """DP-SGD as the Node decided it: σ (calibrated by the Node when the user gave a target ε) and C."""

    noise_multiplier: float = Field(gt=0, allow_inf_nan=False)
    max_grad_norm: float = Field(gt=0, allow_inf_nan=False)


class TrainingConfig(_Contract):
    loss: Loss
    optimizer: Optimizer
    lr: float = Field(gt=0, le=10, allow_inf_nan=False)
    epochs: int = Field(ge=1, le=1000)
    batch_size: int = Field(ge=1)
    dp: DPConfig | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seeds model initialisation only")


class TrainingInputs(_Contract):
    features: StoredInput
    labels: StoredInput


class _Payload(_Contract):
    job_id: int
    attempt: int = Field(ge=1)
    cpus: float = Field(gt=0)
    store_url: str
    store_options: dict[str, Any] = Field(default_factory=dict)
    time_limit: float = Field(gt=0)
    delta: float = Field(gt=0, lt=1)
    memory_bytes: int | None = Field(None, ge=0, description="the job's estimated peak memory (compute/memory.py), "
                                                               "reserved for its Ray task")


class TrainingPayload(_Payload):
    kind: Literal["train"] = "train"
    inputs: TrainingInputs
    spec: dict[str, Any]
    settings: TrainingConfig
    weights: StoredObject | None = None
    label_classes: int | None = Field(None, ge=1, description="classes the owner declared for the labels")


class StatisticConfig(_Contract):
    statistic: Statistic
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    mechanism: Mechanism = "laplace"
    column: int | None = Field(None, ge=0)
    bounds: tuple[float, float] | None = None
    columns: list[int] | None = Field(None, min_length=1, description="several columns in one job (sum, mean)")
    column_bounds: list[tuple[float, float]] | None = Field(None, description="the declared bounds of each column")
    bins: int | None = Field(None, ge=1)
    alphas: list[float] | None = None
    candidates: int = Field(1000, ge=2)


class StatisticsInputs(_Contract):
    column: StoredInput


class StatisticsPayload(_Payload):
    kind: Literal["statistics"] = "statistics"
    inputs: StatisticsInputs
    settings: StatisticConfig


JobPayload = Annotated[TrainingPayload | StatisticsPayload, Field(discriminator="kind")]
_PAYLOAD: TypeAdapter[TrainingPayload | StatisticsPayload] = TypeAdapter(JobPayload)


def parse_payload(data: Any) -> TrainingPayload | StatisticsPayload:
    """The payload a Worker was handed (raises pydantic's ValidationError if it is not one)."""
    return _PAYLOAD.validate_python(data)


# ---- what a Worker reports -----------------------------------------------------------------------------


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class EpochMetric(_Contract):
    """Loss (and accuracy for classification) on the training data after an epoch. A non-finite loss is
    recorded as null (JSON and PostgreSQL have no NaN)."""

    epoch: int = Field(ge=0)
    loss: float | None
    accuracy: float | None = None

    @field_validator("loss", "accuracy")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        return _finite_or_none(value)


class Started(_Contract):
    type: Literal["started"] = "started"
    node_id: str = ""
    pid: int = 0


class Heartbeat(_Contract):
    type: Literal["heartbeat"] = "heartbeat"


class ProgressReport(_Contract):
    type: Literal["progress"] = "progress"
    progress: float = Field(ge=0, le=1)
    epoch: int = Field(ge=0)
    metrics: list[EpochMetric] = _officer_only("per-epoch metrics on private data")


class ModelDone(_Contract):
    type: Literal["done"] = "done"
    kind: Literal["model"] = "model"
    object_key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    event: dict[str, Any] = Field(description="the DpEvent of what ran (JSON)")
    steps: int = Field(ge=0, description="optimizer steps run: planned from public settings")
    sample_rate: float = Field(ge=0, le=1)
    metrics: list[EpochMetric] = _officer_only("per-epoch metrics on private data")
    zeroed_samples: int = _officer_only("per-sample gradients zeroed because they were not finite")
    seconds: float = _officer_only("run time on the Worker (a timing channel)")


class StatisticDone(_Contract):
    type: Literal["done"] = "done"
    kind: Literal["statistic"] = "statistic"
    value: Any = Field(description="the noised value(s): private until released")
    mechanism: str
    event: dict[str, Any]
    noise_scale: float | list[Any] | dict[str, Any] | None = None
    metrics: list[EpochMetric] = Field(default_factory=list)


Done = Annotated[ModelDone | StatisticDone, Field(discriminator="kind")]


class Failed(_Contract):
    type: Literal["failed"] = "failed"
    error_code: ErrorCode
    error_detail: str = _officer_only("what went wrong, for an officer: may quote private data")

    @field_validator("error_detail")
    @classmethod
    def _short(cls, value: str) -> str:
        return value[:ERROR_DETAIL_CHARS]

    @property
    def public_message(self) -> str:
        return PUBLIC_ERROR_MESSAGES[self.error_code]


Report = Started | Heartbeat | ProgressReport | ModelDone | StatisticDone | Failed
_REPORT: TypeAdapter[Report] = TypeAdapter(
    Annotated[Started | Heartbeat | ProgressReport | Done | Failed, Field(discriminator="type")]
)


def parse_report(data: Any) -> Report:
    """A Worker's report, typed. Anything that is not a valid report becomes ``Failed(internal)`` whose
    officer-only detail says what arrived (a Worker is trusted code, so this is a bug, not an attack)."""
    try:
        return _REPORT.validate_python(data)
    except ValidationError as exc:
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        return Failed(error_code=ErrorCode.internal,
                      error_detail=f"the Worker sent a report the Node cannot read ({kind!r}): {exc}")


def failed(code: ErrorCode, detail: str) -> Failed:
    return Failed(error_code=code, error_detail=detail)
