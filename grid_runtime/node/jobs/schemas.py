"""API shapes for jobs, results and job quotas."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from grid_runtime.compute.contracts import MAX_WEIGHTS_BYTES, Loss, Optimizer, Statistic  # one source
from grid_runtime.core.schemas import Out, Schema


class DPIn(Schema):
    """DP-SGD settings: a noise multiplier σ and clipping norm C, or a target ε the noise is calibrated to
    (at the Node's δ). The Node calibrates σ from ``target_epsilon`` alone and records it in the job's settings;
    given both, σ must reach the target."""

    noise_multiplier: float | None = Field(None, gt=0, le=1000)
    max_grad_norm: float = Field(1.0, gt=0, le=1e6)
    target_epsilon: float | None = Field(None, gt=0, le=1000)

    @model_validator(mode="after")
    def _one_way(self) -> DPIn:
        if self.noise_multiplier is None and self.target_epsilon is None:
            raise ValueError("give noise_multiplier, or target_epsilon to calibrate it")
        for name in ("noise_multiplier", "max_grad_norm", "target_epsilon"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
        return self


class TrainIn(Schema):
    """A training job: a model spec on a dataset's ``features`` and ``labels`` members (or other roles)."""

    spec: dict[str, Any] = Field(description="the model spec (gridctl.model-spec/1): allowlisted layers only")
    dataset: str = Field(description="dataset id or name")
    features: str = Field("features", description="the dataset member holding the features")
    labels: str = Field("labels", description="the dataset member holding the labels")
    loss: Loss = "cross_entropy"
    optimizer: Optimizer = "sgd"
    lr: float = Field(0.1, gt=0, le=10)
    epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=1_000_000)
    dp: DPIn | None = None
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    initial_weights: str | None = Field(
        None, max_length=4 * (MAX_WEIGHTS_BYTES // 3 + 1),
        description="initial parameters: a safetensors file, base64-encoded; its names and shapes must be the "
                    "spec's (loaded without running code; training starts from fresh parameters without it)")


class StatisticsIn(Schema):
    """A DP statistic of one column of a dataset member, with the bounds its owner declared."""

    dataset: str
    member: str = Field(description="the dataset member (tensor role) to read")
    column: int | None = Field(None, ge=0, description="column of a 2-D member [0]")
    columns: list[Annotated[int, Field(ge=0)]] | Literal["all"] | None = Field(
        None, min_length=1, max_length=1024,
        description="sum or mean of several columns of a 2-D member (or \"all\") in one job: one value a column, "
                    "each at epsilon, charged once as their composed event")
    statistic: Statistic
    epsilon: float = Field(gt=0, le=100)
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    bins: int | None = Field(None, ge=1, le=10_000, description="histogram only")
    alphas: list[float] | None = Field(None, min_length=1, max_length=99, description="quantiles only")
    candidates: int = Field(1000, ge=2, le=10_000, description="quantiles only")


# ---- what each reader sees ---------------------------------------------------------------------------------
#
# Before a release, a job's owner sees only fields that are not functions of private data: what they asked
# for (spec, settings, inputs' public metadata), what the Node decided from it (the planned event and ε), and
# the job's lifecycle. No digest, size, counter, metric, run time or failure text: each of those can be made to
# encode private rows. The allowlists below are the declaration; ``jobs.service`` builds the shapes from them
# and tests/test_jobs.py checks that nothing else leaks.

PUBLIC_INPUT_FIELDS: tuple[str, ...] = ("tensor_id", "role", "shape", "dtype")
"""What a job's owner sees of each input: no sha256 (a content hash is an oracle on private rows)."""

PUBLIC_LINEAGE_FIELDS: tuple[str, ...] = ("job_id", "dataset_id", "inputs", "spec", "settings", "events")
"""What a result's owner sees of its lineage before a release: its public recipe and the privacy events."""


class JobOut(Out):
    """A job as its owner sees it: only fields that are not functions of private data."""

    id: int
    kind: str
    state: str
    owner_id: int
    dataset_id: int | None
    inputs: dict[str, Any] = Field(description="role -> tensor_id, role, shape, dtype (public metadata only)")
    spec: dict[str, Any]
    settings: dict[str, Any]
    planned_event: dict[str, Any] | None
    planned_epsilon: float | None = Field(description="the job's own ε at the Node's δ, charged when admitted; "
                                          "null: not differentially private")
    progress: float
    error_code: str | None = Field(None, description="why it failed: a stable code (compute.contracts.ErrorCode)")
    error: str | None = Field(None, description="a failure's generic message, the same for every job with that "
                              "code; officers can read the detail")
    time_limit_seconds: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_id: int | None = None
    layers: list[dict[str, Any]] | None = Field(None, description="the spec as a layer table (train jobs)")


class JobOfficerOut(JobOut):
    """A job as holders of triage_requests see it: also what was computed on private data."""

    metrics: list[dict[str, Any]] = Field(description="per-epoch metrics on private data (officers only)")
    error_detail: str | None = Field(None, description="what went wrong on the Worker (officers only)")
    attempts: int
    worker: str | None


class ResultOut(Out):
    """A result as its owner sees it before they may download it: only fields that are not functions of
    private data (no digest, no size, no counters)."""

    id: int
    job_id: int
    owner_id: int
    kind: str
    lineage: dict[str, Any] = Field(description="job_id, dataset_id, inputs (public metadata), spec, settings, "
                                    "events")
    event: dict[str, Any] | None
    event_description: str
    epsilon: float | None = Field(description="the result's own ε at delta; null: not differentially private")
    delta: float
    non_private: bool = Field(description="not differentially private: it can leave only through an officer")
    created_at: datetime
    downloadable: bool = Field(description="whether the caller may download it now")


class ResultDetailOut(ResultOut):
    """A result as officers (triage_requests) and whoever may download it see it: the full lineage and size;
    the sha256 for those who may download it, the HMAC fingerprint for officers."""

    sha256: str | None = Field(None, description="the artifact's sha256 (only for who may download it)")
    fingerprint: str | None = Field(None, description="HMAC-SHA256 of the artifact under the node's secret "
                                    "(officers: approve a release with it)")
    size_bytes: int


class QuotaIn(Schema):
    """A user's quotas; null: the Node's default."""

    max_concurrent: int | None = Field(None, ge=0, le=1000)
    max_per_day: int | None = Field(None, ge=0, le=100_000)
    max_run_seconds: int | None = Field(None, ge=1, le=30 * 24 * 3600)


class QuotaOut(Schema):
    user_id: int
    max_concurrent: int
    max_per_day: int
    max_run_seconds: int
    custom: dict[str, bool] = Field(description="which figures are set for this user (else the Node's default)")
    active_jobs: int
    jobs_last_24h: int


class JobOptionsOut(Schema):
    """What a client needs to plan a job: the Node's δ, the choices it accepts, and the caller's quotas."""

    delta: float
    rdp_order: float
    losses: list[str]
    optimizers: list[str]
    statistics: list[str]
    workers_enabled: bool
    quota: QuotaOut
