"""The Node's job runner: submits admitted jobs to the Workers as Ray tasks and watches them to the end.

One background thread (the monitor) does everything, so the state machine has a single writer besides the
API's cancel flag:

- every queued job not yet submitted becomes a Ray streaming-generator task (`grid_runtime.compute.tasks.
  run_job`) that needs a ``grid_worker`` resource, so it only ever runs on a Worker (the head has no CPUs);
- the task's reports move the job to ``running``, update its progress and metrics, and its last report stores
  the result (`service.complete`);
- a job is ``cancelled`` when asked (``ray.cancel(force=True)``); ``failed`` when it passes its run-time limit,
  when the task reports an error, or when its Worker is lost (Ray raises NodeDiedError / WorkerCrashedError
  within seconds; a task silent for ``job_stall_seconds`` counts as lost too) and the job has used its
  ``job_max_attempts`` — before that, a lost job is queued again and resubmitted. No path waits forever.

Ray's own task retries are off (``max_retries=0``): a retry is the Node's decision, counted in ``attempts`` and
visible in the job's ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grid_runtime.core.database import transaction
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.jobs import service
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.tensors.models import Tensor

log = logging.getLogger("grid_runtime.node.jobs")
TICK_SECONDS = 0.5
PROGRESS_WRITE_SECONDS = 1.0
LOST_ERRORS = ("NodeDiedError", "WorkerCrashedError", "ObjectLostError", "OwnerDiedError", "RaySystemError",
               "ObjectFetchTimedOutError", "LocalRayletDiedError", "OutOfMemoryError")


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

    # ---- life ----------------------------------------------------------------------------------------

    def start(self) -> None:
        import ray

        from grid_runtime.compute import tasks

        self._remote = ray.remote(max_retries=0)(tasks.run_job)
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
            self._finish(tracked.job_id, "failed", "the Node stopped while the job ran")
        self._tracked.clear()

    def running_jobs(self) -> int:
        return len(self._tracked)

    def _recover(self) -> None:
        with transaction(self.sessions) as session:
            for job in session.scalars(select(Job).where(Job.state == "running")):
                service.finish(session, job_id=job.id, state="failed",
                               error="the Node restarted while the job ran; submit it again")

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the monitor must outlive any one bad tick
                log.exception("job monitor tick failed")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    # ---- one pass ------------------------------------------------------------------------------------

    def _tick(self) -> None:
        with transaction(self.sessions) as session:
            queued = list(session.scalars(select(Job).where(Job.state == "queued").order_by(Job.id)))
            cancel_ids = set(session.scalars(select(Job.id).where(Job.cancel_requested.is_(True),
                                                                   Job.state.in_(service.ACTIVE_STATES))))
            to_submit = []
            for job in queued:
                if job.id in self._tracked:
                    continue
                if job.id in cancel_ids:
                    service.finish(session, job_id=job.id, state="cancelled", error="cancelled before it ran")
                    continue
                to_submit.append(self._payload(session, job))
                job.attempts += 1
        for payload in to_submit:
            self._submit(payload)
        for tracked in list(self._tracked.values()):
            if tracked.job_id in cancel_ids:
                self._cancel_task(tracked)
                self._finish(tracked.job_id, "cancelled", "cancelled by request")
                continue
            self._poll(tracked)

    def _payload(self, session: Session, job: Job) -> dict[str, Any]:
        inputs = {}
        for slot, record in job.inputs.items():
            tensor = session.get(Tensor, record["tensor_id"])
            inputs[slot] = {"key": tensor.object_key if tensor else "", "sha256": record["sha256"]}
        return {"job_id": job.id, "kind": job.kind, "inputs": inputs, "spec": job.spec,
                "settings": job.settings, "delta": job.settings.get("delta", self.settings.delta),
                "cpus": self.settings.job_cpus, "store_url": self.settings.resolved_object_store_url,
                "store_options": self.settings.object_store_options, "attempt": job.attempts + 1,
                "time_limit": job.time_limit_seconds, "weights": job.settings.get("initial_weights")}

    def _submit(self, payload: dict[str, Any]) -> None:
        from grid_runtime.compute.cluster import WORKER_RESOURCE

        generator = self._remote.options(
            num_cpus=self.settings.job_cpus, resources={WORKER_RESOURCE: 0.01},
            name=f"grid-job-{payload['job_id']}",
        ).remote(payload)
        self.tasks_submitted += 1
        self._tracked[payload["job_id"]] = _Tracked(job_id=payload["job_id"], generator=generator,
                                                    attempt=payload["attempt"], time_limit=payload["time_limit"])

    def _poll(self, tracked: _Tracked) -> None:
        import ray

        now = time.monotonic()
        if tracked.started is not None and now - tracked.started > tracked.time_limit:
            self._cancel_task(tracked)
            self._finish(tracked.job_id, "failed", f"the job passed its run-time limit of {tracked.time_limit:.0f}s")
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
                self._finish(tracked.job_id, "failed", "the task ended without a result")
                return
            except Exception as exc:  # noqa: BLE001 - Ray's errors decide between retry and failure
                self._task_error(tracked, exc)
                return
            self._report(tracked, report)

    def _report(self, tracked: _Tracked, report: dict[str, Any]) -> None:
        tracked.last_report = time.monotonic()
        kind = report.get("type")
        if kind == "started":
            tracked.started = time.monotonic()
            with transaction(self.sessions) as session:
                service.mark_started(session, job_id=tracked.job_id, worker=str(report.get("node_id", "")))
        elif kind == "progress":
            if time.monotonic() - tracked.last_write >= PROGRESS_WRITE_SECONDS or report.get("metrics"):
                tracked.last_write = time.monotonic()
                with transaction(self.sessions) as session:
                    service.record_progress(session, job_id=tracked.job_id, progress=report.get("progress"),
                                            metrics=report.get("metrics") or None)
        elif kind == "done":
            self._tracked.pop(tracked.job_id, None)
            try:
                with transaction(self.sessions) as session:
                    service.complete(session, job_id=tracked.job_id, done=report, settings=self.settings)
            except Exception as exc:  # noqa: BLE001 - a result the Node cannot record is a failed job
                log.exception("could not record the result of job %s", tracked.job_id)
                self._finish(tracked.job_id, "failed", f"the Node could not record the result: {exc}")
        elif kind == "error":
            self._finish(tracked.job_id, "failed", str(report.get("message", "the task failed")))

    def _task_error(self, tracked: _Tracked, exc: Exception) -> None:
        name = type(exc).__name__
        if name == "TaskCancelledError":
            self._finish(tracked.job_id, "cancelled", "cancelled")
        elif name in LOST_ERRORS or "Died" in name or "Crashed" in name:
            self._lost(tracked, f"its Worker was lost ({name})")
        else:
            self._finish(tracked.job_id, "failed", f"{name}: {str(exc)[:1000]}")

    def _lost(self, tracked: _Tracked, reason: str) -> None:
        self._tracked.pop(tracked.job_id, None)
        with transaction(self.sessions) as session:
            job = service.get_job(session, tracked.job_id)
            if job.state in ("succeeded", "failed", "cancelled"):
                return
            if job.attempts < self.settings.job_max_attempts and not job.cancel_requested:
                service.requeue(session, job_id=job.id, reason=reason)
                self._wake.set()
            else:
                service.finish(session, job_id=job.id, state="failed",
                               error=f"{reason} on attempt {job.attempts} of {self.settings.job_max_attempts}")

    def _cancel_task(self, tracked: _Tracked) -> None:
        import ray

        self._tracked.pop(tracked.job_id, None)
        try:
            ray.cancel(tracked.generator, force=True)
        except Exception:  # noqa: BLE001 - already finished or its Worker is gone: nothing left to stop
            log.debug("cancelling job %s's task", tracked.job_id, exc_info=True)

    def _finish(self, job_id: int, state: str, error: str | None) -> None:
        self._tracked.pop(job_id, None)
        with transaction(self.sessions) as session:
            service.finish(session, job_id=job_id, state=state, error=error)
