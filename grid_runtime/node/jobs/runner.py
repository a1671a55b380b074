"""The Node's job runner: submits admitted jobs to the Workers as Ray tasks and watches them to the end.

One background thread (the monitor) does everything, so the state machine has a single writer besides the
API's cancel flag:

- every queued job not yet submitted becomes a Ray streaming-generator task (`grid_runtime.compute.tasks.
  run_job`) that needs a ``grid_worker`` resource, so it only ever runs on a Worker (the head has no CPUs);
- the task gets a typed payload (`grid_runtime.compute.contracts.TrainingPayload` / `StatisticsPayload`) and
  sends typed reports (parsed with `contracts.parse_report`): they move the job to ``running``, update its
  progress and metrics, and its last report stores the result (`service.complete`) or the failure;
- a job is ``cancelled`` when asked (``ray.cancel(force=True)``); ``failed`` when it passes its run-time limit
  (``timeout``), when the task reports a failure (its code), or when its Worker is lost (Ray raises
  NodeDiedError / WorkerCrashedError within seconds; a task silent for ``job_stall_seconds`` counts as lost
  too) and the job has used its ``job_max_attempts`` (``worker_lost``) — before that, a lost job is queued
  again and resubmitted. No path waits forever. The moves are the ones `grid_runtime.compute.states` allows.

Every failure is recorded as a stable `ErrorCode` with the generic text its owner reads and an officer-only
detail (an exception's text can quote private data: it never reaches the job's owner).

Ray's own task retries are off (``max_retries=0``): a retry is the Node's decision, counted in ``attempts``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grid_runtime.compute.contracts import (
    Bounds,
    DPConfig,
    ErrorCode,
    Failed,
    Heartbeat,
    ModelDone,
    ProgressReport,
    Started,
    StatisticConfig,
    StatisticDone,
    StatisticsInputs,
    StatisticsPayload,
    StoredInput,
    StoredObject,
    TrainingConfig,
    TrainingInputs,
    TrainingPayload,
    parse_report,
)
from grid_runtime.compute.states import ACTIVE_STATES, JobKind, JobState
from grid_runtime.core.database import transaction
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.jobs import service
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.tensors.models import Tensor

log = logging.getLogger("grid_runtime.node.jobs")
TICK_SECONDS = 0.5
PROGRESS_WRITE_SECONDS = 1.0
LOST_ERRORS = ("NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError", "RaySystemError",
               "ObjectFetchTimedOutError", "LocalRayletDiedError")
OUT_OF_MEMORY_ERRORS = ("OutOfMemoryError",)  # Ray's memory monitor killed the task: another attempt would too


@dataclass
class _Tracked:
    job_id: int
    generator: Any
    attempt: int
    time_limit: float
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    last_report: float = field(default_factory=time.monotonic)
    last_write: float = 0.0


class JobRunner:
    """Submits and monitors jobs (see the module docstring). ``tasks_submitted`` counts Ray tasks ever sent."""

    def __init__(self, sessions: sessionmaker[Session], settings: NodeSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.tasks_submitted = 0
        self._tracked: dict[int, _Tracked] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._remote: Any = None
        self._warmer: Any = None  # grid_runtime.compute.cluster.WorkerWarmer, once started

    # ---- life ----------------------------------------------------------------------------------------

    def start(self) -> None:
        import ray

        from grid_runtime.compute import tasks
        from grid_runtime.compute.cluster import WorkerWarmer

        self._remote = ray.remote(max_retries=0)(tasks.run_job)
        self._warmer = WorkerWarmer(job_cpus=self.settings.job_cpus)  # joining Workers start warm
        self._recover()
        self._thread = threading.Thread(target=self._loop, name="grid-job-monitor", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for tracked in list(self._tracked.values()):
            self._cancel_task(tracked)
            self._fail(tracked.job_id, ErrorCode.node_stopped, "the Node stopped while the job ran")
        self._tracked.clear()

    def running_jobs(self) -> int:
        return len(self._tracked)

    def _recover(self) -> None:
        with transaction(self.sessions) as session:
            for job in session.scalars(select(Job).where(Job.state == JobState.running)):
                service.finish(session, job_id=job.id, state=JobState.failed, error_code=ErrorCode.node_stopped,
                               error_detail="the Node restarted while the job ran")

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the monitor must outlive any one bad tick
                log.exception("job monitor tick failed")
            self._warmer.tick()
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    # ---- one pass ------------------------------------------------------------------------------------

    def _tick(self) -> None:
        with transaction(self.sessions) as session:
            queued = list(session.scalars(select(Job).where(Job.state == JobState.queued).order_by(Job.id)))
            cancel_ids = set(session.scalars(select(Job.id).where(Job.cancel_requested.is_(True),
                                                                   Job.state.in_(ACTIVE_STATES))))
            to_submit: list[TrainingPayload | StatisticsPayload] = []
            for job in queued:
                if job.id in self._tracked:
                    continue
                if job.id in cancel_ids:
                    service.finish(session, job_id=job.id, state=JobState.cancelled, note="cancelled before it ran")
                    continue
                try:
                    payload = self._payload(session, job)
                except (ValidationError, LookupError) as exc:
                    service.finish(session, job_id=job.id, state=JobState.failed, error_code=ErrorCode.input_invalid,
                                   error_detail=f"the Node cannot hand this job to a Worker: {exc}")
                    continue
                to_submit.append(payload)
                job.attempts += 1
        for payload in to_submit:
            self._submit(payload)
        for tracked in list(self._tracked.values()):
            if tracked.job_id in cancel_ids:
                self._cancel_task(tracked)
                self._finish(tracked.job_id, JobState.cancelled, note="cancelled by request")
                continue
            self._poll(tracked)

    def _input(self, session: Session, job: Job, slot: str, dataset: Dataset | None) -> StoredInput:
        """A job input as a Worker reads it: its key, the digest it was admitted with, the declared bounds."""
        record = job.inputs[slot]
        tensor = session.get(Tensor, record["tensor_id"])
        if tensor is None:
            raise LookupError(f"input {slot!r} (tensor {record['tensor_id']}) was deleted")
        role = str(record.get("role", slot))
        declared = dataset.bounds.get(role) if dataset is not None else None
        return StoredInput(key=tensor.object_key, sha256=record["sha256"], role=role,
                           bounds=Bounds.model_validate(declared) if declared else None)

    def _payload(self, session: Session, job: Job) -> TrainingPayload | StatisticsPayload:
        """The typed payload of a queued job (raises ValidationError or LookupError if it cannot be built)."""
        dataset = session.get(Dataset, job.dataset_id) if job.dataset_id is not None else None
        s = job.settings
        common = {"job_id": job.id, "attempt": job.attempts + 1, "cpus": self.settings.job_cpus,
                  "store_url": self.settings.resolved_object_store_url,
                  "store_options": self.settings.object_store_options or {}, "time_limit": job.time_limit_seconds,
                  "delta": s.get("delta", self.settings.delta), "memory_bytes": s.get("memory_bytes")}
        if job.kind == JobKind.train:
            dp = s.get("dp")
            weights = s.get("initial_weights")
            return TrainingPayload(
                **common, spec=job.spec,
                inputs=TrainingInputs(features=self._input(session, job, "features", dataset),
                                      labels=self._input(session, job, "labels", dataset)),
                settings=TrainingConfig(
                    loss=s["loss"], optimizer=s["optimizer"], lr=s["lr"], epochs=s["epochs"],
                    batch_size=s["batch_size"], seed=s.get("seed"),
                    dp=DPConfig(noise_multiplier=dp["noise_multiplier"], max_grad_norm=dp["max_grad_norm"])
                    if dp else None),
                weights=StoredObject(key=weights["key"], sha256=weights["sha256"]) if weights else None,
                label_classes=getattr(dataset, "label_classes", None))
        return StatisticsPayload(
            **common, inputs=StatisticsInputs(column=self._input(session, job, "column", dataset)),
            settings=StatisticConfig.model_validate({k: v for k, v in s.items()
                                                     if k in StatisticConfig.model_fields}))

    def _submit(self, payload: TrainingPayload | StatisticsPayload) -> None:
        from grid_runtime.compute.cluster import WORKER_RESOURCE

        # A training job reserves its estimated peak memory (compute/memory.py, checked at admission).
        memory = {"memory": payload.memory_bytes} if payload.memory_bytes else {}
        generator = self._remote.options(
            num_cpus=self.settings.job_cpus, resources={WORKER_RESOURCE: 0.01},
            name=f"grid-job-{payload.job_id}", **memory,
        ).remote(payload.model_dump(mode="json"))
        self.tasks_submitted += 1
        self._tracked[payload.job_id] = _Tracked(job_id=payload.job_id, generator=generator,
                                                 attempt=payload.attempt, time_limit=payload.time_limit)

    def _poll(self, tracked: _Tracked) -> None:
        import ray

        now = time.monotonic()
        if tracked.started is not None and now - tracked.started > tracked.time_limit:
            self._cancel_task(tracked)
            self._fail(tracked.job_id, ErrorCode.timeout,
                       f"the job passed its run-time limit of {tracked.time_limit:.0f}s")
            return
        if tracked.started is not None and now - tracked.last_report > self.settings.job_stall_seconds:
            self._cancel_task(tracked)
            self._lost(tracked, f"its Worker sent nothing for {self.settings.job_stall_seconds:.0f}s")
            return
        while tracked.job_id in self._tracked:
            ready, _ = ray.wait([tracked.generator], timeout=0)
            if not ready:
                return
            try:
                ref = next(tracked.generator)
                report = ray.get(ref, timeout=30)
            except StopIteration:
                self._fail(tracked.job_id, ErrorCode.internal, "the task ended without a result")
                return
            except Exception as exc:  # noqa: BLE001 - Ray's errors decide between retry and failure
                self._task_error(tracked, exc)
                return
            self._report(tracked, report)

    def _report(self, tracked: _Tracked, data: Any) -> None:
        tracked.last_report = time.monotonic()
        report = parse_report(data)
        if isinstance(report, Started):
            tracked.started = time.monotonic()
            with transaction(self.sessions) as session:
                service.mark_started(session, job_id=tracked.job_id, worker=report.node_id)
        elif isinstance(report, ProgressReport):
            if time.monotonic() - tracked.last_write >= PROGRESS_WRITE_SECONDS or report.metrics:
                tracked.last_write = time.monotonic()
                with transaction(self.sessions) as session:
                    service.record_progress(session, job_id=tracked.job_id, progress=report.progress,
                                            metrics=[m.model_dump() for m in report.metrics] or None)
        elif isinstance(report, ModelDone | StatisticDone):
            self._tracked.pop(tracked.job_id, None)
            try:
                with transaction(self.sessions) as session:
                    service.complete(session, job_id=tracked.job_id, done=report, settings=self.settings)
            except Exception as exc:  # noqa: BLE001 - a result the Node cannot record is a failed job
                log.exception("could not record the result of job %s", tracked.job_id)
                self._fail(tracked.job_id, ErrorCode.internal,
                           f"the Node could not record the result: {type(exc).__name__}: {exc}")
        elif isinstance(report, Failed):
            self._fail(tracked.job_id, report.error_code, report.error_detail)
        elif isinstance(report, Heartbeat):
            pass

    def _task_error(self, tracked: _Tracked, exc: Exception) -> None:
        name = type(exc).__name__
        if name == "TaskCancelledError":
            self._finish(tracked.job_id, JobState.cancelled, note="cancelled")
        elif name in OUT_OF_MEMORY_ERRORS:
            self._fail(tracked.job_id, ErrorCode.out_of_memory, f"{name}: {str(exc)[:1500]}")
        elif name in LOST_ERRORS or "Died" in name or "Crashed" in name:
            self._lost(tracked, f"its Worker was lost ({name})")
        else:  # Ray's own text can carry the Worker's traceback: officers only
            self._fail(tracked.job_id, ErrorCode.internal, f"{name}: {str(exc)[:1500]}")

    def _lost(self, tracked: _Tracked, reason: str) -> None:
        self._tracked.pop(tracked.job_id, None)
        with transaction(self.sessions) as session:
            job = service.get_job(session, tracked.job_id)
            if JobState(job.state).terminal:
                return
            if job.attempts < self.settings.job_max_attempts and not job.cancel_requested:
                service.requeue(session, job_id=job.id, reason=reason)
                self._wake.set()
            else:
                service.finish(session, job_id=job.id, state=JobState.failed, error_code=ErrorCode.worker_lost,
                               error_detail=f"{reason} on attempt {job.attempts} of {self.settings.job_max_attempts}")

    def _cancel_task(self, tracked: _Tracked) -> None:
        import ray

        self._tracked.pop(tracked.job_id, None)
        try:
            ray.cancel(tracked.generator, force=True)
        except Exception:  # noqa: BLE001 - already finished or its Worker is gone: nothing left to stop
            log.debug("cancelling job %s's task", tracked.job_id, exc_info=True)

    def _fail(self, job_id: int, code: ErrorCode, detail: str) -> None:
        self._finish(job_id, JobState.failed, error_code=code, error_detail=detail)

    def _finish(self, job_id: int, state: JobState, *, error_code: ErrorCode | None = None,
                error_detail: str | None = None, note: str | None = None) -> None:
        self._tracked.pop(job_id, None)
        with transaction(self.sessions) as session:
            service.finish(session, job_id=job_id, state=state, error_code=error_code, error_detail=error_detail,
                           note=note)
