from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.compute.states import JobState
from grid_runtime.core.database import Base, utcnow

JOB_STATES = tuple(state.value for state in JobState)  # the state machine: compute.states
FINISHED_STATES = tuple(state.value for state in JobState if state.terminal)


class Job(Base):
    """A training or statistics job. ``planned_event`` is the privacy cost computed by the Node from the
    job's public settings before it runs; ``metrics`` (per-epoch loss and accuracy on private data) are
    shown to officers only."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_state", "owner_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "train" | "statistics"
    state: Mapped[str] = mapped_column(String(16), index=True)  # compute.states.JobState
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), index=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # role -> tensor id
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the model spec (train jobs)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # loss, optimizer, lr, epochs, dp, ...
    planned_event: Mapped[dict[str, Any] | None] = mapped_column()  # DpEvent as JSON; None if not private
    planned_epsilon: Mapped[float | None]
    progress: Mapped[float] = mapped_column(default=0.0)
    metrics: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(String(2000))
    # Why a job failed: a stable code any owner may see (``worker_error``, ``timeout``, ``worker_lost``...) and the
    # detail (exception text, which can be a function of private data) shown to holders of triage_requests only.
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(128))
    # The run-time limit this job was admitted with (the owner's quota when it was submitted).
    time_limit_seconds: Mapped[int] = mapped_column(default=3600)
    # Set by a cancel; the Node's monitor acts on it (ray.cancel) and marks the job cancelled.
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The last time the running task reported (progress or a heartbeat): the monitor's stall deadline.
    heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Result(Base):
    """What a job produced: trained parameters (safetensors in the object store) or a statistic's value.
    It stays on the Node until its owner may download it (every input at download level) or a release
    request for it is approved."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "model" | "statistic"
    object_key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[dict[str, Any] | None] = mapped_column()  # a statistic's value
    sha256: Mapped[str] = mapped_column(String(64))  # of the artifact (bytes, or canonical JSON of value)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)  # inputs, spec, settings
    event: Mapped[dict[str, Any] | None] = mapped_column()  # DpEvent JSON; None: not private
    epsilon: Mapped[float | None]  # None: not private (an infinite cost)
    delta: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobQuota(Base):
    """A user's job quotas, set by an administrator (``manage_users``). A NULL column (or no row) means the
    Node's default from its settings (``job_max_concurrent``, ``job_max_per_day``, ``job_max_run_seconds``)."""

    __tablename__ = "job_quotas"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    max_concurrent: Mapped[int | None]
    max_per_day: Mapped[int | None]
    max_run_seconds: Mapped[int | None]
    set_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
