"""Jobs and results: admission (spec, permissions, quotas, privacy cost, budget), lifecycle, results.

Admission happens entirely here, in the request's transaction, before a job row exists: a job that is
refused (bad spec, no ``compute`` on an input, a quota, a cost the user's remaining budget could never
release) never reaches Ray. The runner (`runner.py`) only ever submits jobs that were admitted and stored.

Who sees what: a job's owner sees their jobs; holders of ``triage_requests`` (officers) see every job and,
only they, the per-epoch metrics computed on private data. A result is shown to its owner and to officers;
its artifact is downloadable by its owner when they could download every input (the inheritance rule) or when
a release request of theirs for it was approved (the budget domain decides that).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unavailable
from grid_runtime.core.levels import Level
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.audit import service as audit
from grid_runtime.node.datasets import service as datasets
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.jobs.models import FINISHED_STATES, Job, JobQuota, Result
from grid_runtime.node.jobs.schemas import JobOut, QuotaIn, QuotaOut, ResultOut, StatisticsIn, TrainIn
from grid_runtime.node.permissions.service import allows, effective_levels, require_level, resolve_user
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User

if TYPE_CHECKING:
    from dp_accounting import DpEvent

    from grid_runtime.node.deps import Actor

ACTIVE_STATES = ("queued", "running")


# ---- lookups ---------------------------------------------------------------------------------------------


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id {job_id}", details={"job_id": job_id})
    return job


def get_result(session: Session, result_id: int) -> Result:
    """The result with this id, or NotFound."""
    result = session.get(Result, result_id)
    if result is None:
        raise NotFound(f"no result with id {result_id}", details={"result_id": result_id})
    return result


def _is_officer(actor: Actor) -> bool:
    return actor.can(Capability.triage_requests)


def _visible_job(session: Session, actor: Actor, job_id: int) -> Job:
    job = get_job(session, job_id)
    if job.owner_id != actor.id and not _is_officer(actor):
        raise NotFound(f"no job with id {job_id}", details={"job_id": job_id})  # others' jobs are not listed
    return job


# ---- quotas ----------------------------------------------------------------------------------------------


def quota_of(session: Session, *, settings: NodeSettings, user_id: int) -> QuotaOut:
    row = session.get(JobQuota, user_id)
    since = utcnow() - timedelta(days=1)
    active = session.scalar(select(func.count()).select_from(Job)
                            .where(Job.owner_id == user_id, Job.state.in_(ACTIVE_STATES))) or 0
    today = session.scalar(select(func.count()).select_from(Job)
                           .where(Job.owner_id == user_id, Job.created_at >= since)) or 0
    own = {"max_concurrent": row.max_concurrent if row else None, "max_per_day": row.max_per_day if row else None,
           "max_run_seconds": row.max_run_seconds if row else None}
    return QuotaOut(
        user_id=user_id,
        max_concurrent=own["max_concurrent"] if own["max_concurrent"] is not None else settings.job_max_concurrent,
        max_per_day=own["max_per_day"] if own["max_per_day"] is not None else settings.job_max_per_day,
        max_run_seconds=own["max_run_seconds"] if own["max_run_seconds"] is not None
        else settings.job_max_run_seconds,
        custom={k: v is not None for k, v in own.items()},
        active_jobs=int(active), jobs_last_24h=int(today),
    )


def set_quota(session: Session, *, actor: Actor, settings: NodeSettings, user_ref: str, body: QuotaIn) -> QuotaOut:
    """Set (or, with nulls, reset to the Node's default) a user's job quotas."""
    user = resolve_user(session, user_ref)
    row = session.get(JobQuota, user.id) or JobQuota(user_id=user.id)
    row.max_concurrent, row.max_per_day, row.max_run_seconds = (
        body.max_concurrent, body.max_per_day, body.max_run_seconds)
    row.set_by, row.set_at = actor.id, utcnow()
    session.add(row)
    audit.record(session, actor=actor, action="job_quota.set", target_type="user", target_id=user.id,
                 details=body.model_dump())
    session.flush()
    return quota_of(session, settings=settings, user_id=user.id)


def _check_quota(session: Session, *, settings: NodeSettings, user_id: int) -> int:
    """Refuse a job over the user's quotas; returns the run-time limit the job gets."""
    quota = quota_of(session, settings=settings, user_id=user_id)
    if quota.active_jobs >= quota.max_concurrent:
        raise RateLimited(f"you have {quota.active_jobs} job(s) queued or running; your quota is "
                          f"{quota.max_concurrent} at a time. Wait for one to finish or cancel one",
                          details={"quota": "max_concurrent", "limit": quota.max_concurrent})
    if quota.jobs_last_24h >= quota.max_per_day:
        raise RateLimited(f"you submitted {quota.jobs_last_24h} job(s) in the last 24 hours; your quota is "
                          f"{quota.max_per_day} a day", details={"quota": "max_per_day", "limit": quota.max_per_day})
    return quota.max_run_seconds


# ---- admission -------------------------------------------------------------------------------------------


def _member(session: Session, dataset: Dataset, role: str) -> Tensor:
    member = session.get(DatasetMember, (dataset.id, role))
    if member is None:
        roles = session.scalars(select(DatasetMember.role).where(DatasetMember.dataset_id == dataset.id))
        raise InvalidInput(f"dataset {dataset.name!r} has no member {role!r}; members: "
                           f"{', '.join(sorted(roles)) or 'none'}", details={"member": role})
    tensor = session.get(Tensor, member.tensor_id)
    assert tensor is not None  # the membership's foreign key
    return tensor


def _inputs(session: Session, *, actor: Actor, dataset: Dataset, roles: dict[str, str]) -> dict[str, Tensor]:
    """The tensors a job reads, each checked for ``compute`` (the most specific rule decides)."""
    found = {}
    for slot, role in roles.items():
        tensor = _member(session, dataset, role)
        require_level(session, actor=actor, target_type="tensor", target_id=tensor.id, needed=Level.compute)
        found[slot] = tensor
    return found


def _input_record(tensor: Tensor, role: str) -> dict[str, Any]:
    return {"tensor_id": tensor.id, "role": role, "sha256": tensor.sha256, "shape": list(tensor.shape),
            "dtype": tensor.dtype}


def _admissible(session: Session, *, actor: Actor, dataset_id: int | None, event: DpEvent | None,
                settings: NodeSettings) -> None:
    """The budget domain's check: the Rényi filter over the ledger, for the user and the dataset's cap."""
    from grid_runtime.node.budget import service as budget

    budget.job_admissible(session, user=actor.user, dataset_id=dataset_id, event=event, settings=settings)


def _require_workers(settings: NodeSettings) -> None:
    if not settings.ray_enabled:
        raise Unavailable("this Node runs no Workers (GRID_NODE_RAY_ENABLED=false): jobs cannot run here",
                          details={"ray_enabled": False})


INITIAL_WEIGHTS_PREFIX = "weights/initial-"


def _initial_weights(spec: dict[str, Any], encoded: str) -> bytes:
    """Decode and check initial weights: a safetensors file whose names and shapes are the spec's."""
    from grid_runtime.compute import builder
    from grid_runtime.compute.spec import SpecError

    try:
        weights = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise InvalidInput("initial_weights is not base64", details={"field": "initial_weights"}) from None
    try:
        builder.build_module(spec, weights)
    except SpecError as exc:
        raise InvalidInput(f"initial_weights do not fit the spec: {exc}",
                           details={"field": "initial_weights"}) from None
    return weights


def discard_initial_weights(store: ObjectStore, job: Job) -> None:
    if job.settings.get("initial_weights"):
        store.delete(job.settings["initial_weights"]["key"])


def submit_training(session: Session, *, actor: Actor, settings: NodeSettings, body: TrainIn,
                    store: ObjectStore) -> Job:
    """Admit a training job (or raise) and store it queued; the runner submits it to a Worker.

    Initial weights, when given, are checked against the spec here and kept in the object store; the caller
    removes that object again (``discard_initial_weights``) if its commit fails."""
    from grid_runtime.compute.spec import SpecError, layer_table, parse_spec
    from grid_runtime.privacy import calibrate_noise, dp_sgd_event, dp_sgd_plan, epsilon, event_to_dict

    try:
        spec = parse_spec(body.spec)
    except SpecError as exc:
        raise InvalidInput(str(exc), details={"field": "spec"}) from None
    dataset = datasets.get_dataset(session, body.dataset)
    tensors = _inputs(session, actor=actor, dataset=dataset, roles={"features": body.features, "labels": body.labels})
    features, labels = tensors["features"], tensors["labels"]
    if not features.shape or not labels.shape or features.shape[0] != labels.shape[0]:
        raise InvalidInput(f"features {features.shape} and labels {labels.shape} must have the same number of rows")
    rows = int(features.shape[0])
    row_shape = list(features.shape[1:])
    if spec.input_shape is None and row_shape:
        try:  # check the layers against the features' row shape now, rather than on a Worker
            spec = parse_spec({**spec.model_dump(mode="json", exclude_none=True), "input_shape": row_shape})
        except SpecError as exc:
            raise InvalidInput(f"the model does not fit the features (rows of shape {row_shape}): {exc}",
                               details={"field": "spec"}) from None
    elif spec.input_shape is not None and list(spec.input_shape) != row_shape:
        raise InvalidInput(f"the spec's input_shape {list(spec.input_shape)} is not the features' row shape "
                           f"{row_shape}", details={"field": "spec.input_shape"})
    if body.batch_size > rows:
        raise InvalidInput(f"batch_size {body.batch_size} exceeds the dataset's {rows} rows",
                           details={"field": "batch_size"})
    time_limit = _check_quota(session, settings=settings, user_id=actor.id)

    dp_settings: dict[str, Any] | None = None
    event = None
    planned_epsilon: float | None = None
    if body.dp is not None:
        sample_rate, steps = dp_sgd_plan(rows=rows, batch_size=body.batch_size, epochs=body.epochs)
        sigma = body.dp.noise_multiplier
        if sigma is None:
            assert body.dp.target_epsilon is not None
            try:
                sigma = calibrate_noise(body.dp.target_epsilon, settings.delta, sample_rate=sample_rate, steps=steps)
            except ValueError as exc:
                raise InvalidInput(f"cannot calibrate noise for ε {body.dp.target_epsilon}: {exc}",
                                   details={"field": "dp.target_epsilon"}) from None
        event = dp_sgd_event(sample_rate=sample_rate, noise_multiplier=sigma, steps=steps)
        planned_epsilon = epsilon(event, settings.delta)
        if body.dp.target_epsilon is not None and planned_epsilon > body.dp.target_epsilon * (1 + 1e-6):
            raise InvalidInput(
                f"noise multiplier {sigma:g} gives ε {planned_epsilon:.4g} at δ {settings.delta:g} for these "
                f"settings ({steps} steps at sampling rate {sample_rate:.4g}), above the target ε "
                f"{body.dp.target_epsilon:g}; calibrate with the Node's δ", details={"field": "dp"})
        dp_settings = {"noise_multiplier": sigma, "max_grad_norm": body.dp.max_grad_norm}
        if body.dp.target_epsilon is not None:
            dp_settings["target_epsilon"] = body.dp.target_epsilon
    spec_json = spec.model_dump(mode="json", exclude_none=True)
    weights = _initial_weights(spec_json, body.initial_weights) if body.initial_weights is not None else None
    _admissible(session, actor=actor, dataset_id=dataset.id, event=event, settings=settings)
    _require_workers(settings)

    initial: dict[str, Any] | None = None
    if weights is not None:
        stored = store.put_stream(f"{INITIAL_WEIGHTS_PREFIX}{uuid.uuid4().hex}.safetensors", io.BytesIO(weights))
        initial = {"key": stored.key, "sha256": stored.sha256}
    job = Job(kind="train", state="queued", owner_id=actor.id, dataset_id=dataset.id,
              inputs={"features": _input_record(features, body.features),
                      "labels": _input_record(labels, body.labels)},
              spec=spec_json,
              settings={"loss": body.loss, "optimizer": body.optimizer, "lr": body.lr, "epochs": body.epochs,
                        "batch_size": body.batch_size, "dp": dp_settings, "seed": body.seed,
                        "delta": settings.delta, "parameters": spec.parameter_count(), "layers": len(spec.layers),
                        "initial_weights": initial},
              planned_event=event_to_dict(event) if event is not None else None, planned_epsilon=planned_epsilon,
              time_limit_seconds=time_limit, metrics=[])
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="job.submitted", target_type="job", target_id=job.id,
                 details={"kind": "train", "dataset_id": dataset.id, "planned_epsilon": planned_epsilon,
                          "dp": dp_settings is not None, "layers": [r["layer"] for r in layer_table(spec)]})
    return job


def _declared_bounds(dataset: Dataset, member: str, column: int | None) -> tuple[float, float]:
    declared = dataset.bounds.get(member)
    if not declared:
        raise InvalidInput(f"dataset {dataset.name!r} declares no bounds for {member!r}; its owner declares them "
                           f"(PUT /datasets/{dataset.name}/bounds). Bounds are never read from the data",
                           details={"member": member})

    def pick(value: Any) -> float:
        if isinstance(value, list):
            index = column or 0
            if index >= len(value):
                raise InvalidInput(f"column {index} has no declared bound", details={"column": index})
            return float(value[index])
        return float(value)

    return pick(declared["lower"]), pick(declared["upper"])


def submit_statistics(session: Session, *, actor: Actor, settings: NodeSettings, body: StatisticsIn) -> Job:
    """Admit a DP statistic (or raise) and store it queued."""
    from grid_runtime.compute.statistics import StatisticsError
    from grid_runtime.compute.tasks import planned_statistic_event
    from grid_runtime.privacy import epsilon, event_to_dict

    dataset = datasets.get_dataset(session, body.dataset)
    tensor = _inputs(session, actor=actor, dataset=dataset, roles={"column": body.member})["column"]
    if len(tensor.shape) not in (1, 2):
        raise InvalidInput(f"member {body.member!r} has shape {tensor.shape}: statistics need 1 or 2 dimensions")
    if body.column is not None and (len(tensor.shape) != 2 or body.column >= tensor.shape[1]):
        raise InvalidInput(f"column {body.column} is outside member {body.member!r} of shape {tensor.shape}",
                           details={"field": "column"})
    params: dict[str, Any] = {"statistic": body.statistic, "epsilon": body.epsilon, "mechanism": body.mechanism,
                              "column": body.column}
    if body.statistic != "count":
        lower, upper = _declared_bounds(dataset, body.member, body.column)
        params["bounds"] = [lower, upper]
    if body.statistic == "histogram":
        if body.bins is None:
            raise InvalidInput("a histogram needs bins", details={"field": "bins"})
        params["bins"] = body.bins
    if body.statistic == "quantiles":
        if not body.alphas:
            raise InvalidInput("quantiles need alphas, e.g. [0.25, 0.5, 0.75]", details={"field": "alphas"})
        params["alphas"], params["candidates"] = body.alphas, body.candidates
    time_limit = _check_quota(session, settings=settings, user_id=actor.id)
    try:
        event = planned_statistic_event(body.statistic, params, settings.delta)
    except (StatisticsError, ValueError) as exc:
        raise InvalidInput(str(exc)) from None
    planned = epsilon(event, settings.delta)
    _admissible(session, actor=actor, dataset_id=dataset.id, event=event, settings=settings)
    _require_workers(settings)
    job = Job(kind="statistics", state="queued", owner_id=actor.id, dataset_id=dataset.id,
              inputs={"column": _input_record(tensor, body.member)}, spec={},
              settings={**params, "delta": settings.delta}, planned_event=event_to_dict(event),
              planned_epsilon=planned, time_limit_seconds=time_limit, metrics=[])
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="job.submitted", target_type="job", target_id=job.id,
                 details={"kind": "statistics", "statistic": body.statistic, "dataset_id": dataset.id,
                          "planned_epsilon": planned})
    return job


# ---- reading and cancelling ------------------------------------------------------------------------------


def job_out(session: Session, job: Job, *, actor: Actor) -> JobOut:
    from grid_runtime.compute.spec import layer_table

    result_id = session.scalar(select(Result.id).where(Result.job_id == job.id))
    out = JobOut.model_validate(job).model_copy(update={"result_id": result_id, "metrics": None})
    if job.kind == "train" and job.spec:
        out.layers = layer_table(job.spec)
    if _is_officer(actor):
        out.metrics = list(job.metrics)
    return out


def list_jobs(session: Session, *, actor: Actor, everyone: bool, state: str | None, limit: int, offset: int
              ) -> tuple[list[Job], int]:
    conditions: list[Any] = []
    if not (everyone and _is_officer(actor)):
        conditions.append(Job.owner_id == actor.id)
    if state:
        conditions.append(Job.state == state)
    total = session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    rows = session.scalars(select(Job).where(*conditions).order_by(Job.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


def read_job(session: Session, *, actor: Actor, job_id: int) -> Job:
    return _visible_job(session, actor, job_id)


def cancel_job(session: Session, *, actor: Actor, job_id: int) -> Job:
    """Ask for a job to stop: the runner cancels its Ray task and marks it cancelled (queued ones at once)."""
    job = _visible_job(session, actor, job_id)
    if job.owner_id != actor.id and not _is_officer(actor):
        raise Forbidden("only the job's owner or an officer may cancel it")
    if job.state in FINISHED_STATES:
        raise Conflict(f"job {job.id} has already {job.state}", details={"state": job.state})
    if not job.cancel_requested:
        job.cancel_requested = True
        audit.record(session, actor=actor, action="job.cancel_requested", target_type="job", target_id=job.id)
    session.flush()
    return job


# ---- results ---------------------------------------------------------------------------------------------


def result_downloadable_without_release(session: Session, *, user_id: int, result: Result) -> bool:
    """The inheritance rule: the owner may download a result freely only if they could download every input."""
    if result.owner_id != user_id:
        return False
    tensor_ids = [int(i["tensor_id"]) for i in result.lineage.get("inputs", {}).values()]
    if not tensor_ids:
        return False
    levels = effective_levels(session, user_id=user_id, tensor_ids=tensor_ids)
    return all(t in levels and allows(levels[t], Level.download) for t in tensor_ids)


def _release_approved(session: Session, user_id: int, result: Result) -> bool:
    from grid_runtime.node.budget import service as budget

    return budget.release_approved(session, user_id, result)


def may_download(session: Session, *, actor: Actor, result: Result) -> bool:
    return result_downloadable_without_release(session, user_id=actor.id, result=result) or (
        result.owner_id == actor.id and _release_approved(session, actor.id, result))


def read_result(session: Session, *, actor: Actor, result_id: int) -> Result:
    result = get_result(session, result_id)
    if result.owner_id != actor.id and not _is_officer(actor):
        raise NotFound(f"no result with id {result_id}", details={"result_id": result_id})
    return result


def result_out(session: Session, result: Result, *, actor: Actor) -> ResultOut:
    from grid_runtime.privacy import describe_event, event_from_dict

    description = describe_event(event_from_dict(result.event)) if result.event else "not differentially private"
    return ResultOut(id=result.id, job_id=result.job_id, owner_id=result.owner_id, kind=result.kind,
                     sha256=result.sha256, size_bytes=result.size_bytes, lineage=result.lineage, event=result.event,
                     event_description=description, epsilon=result.epsilon, delta=result.delta,
                     created_at=result.created_at, downloadable=may_download(session, actor=actor, result=result))


def download_result(session: Session, *, actor: Actor, result_id: int) -> Result:
    """The result if the caller may download it (else Forbidden naming how to get it); audited."""
    result = read_result(session, actor=actor, result_id=result_id)
    if not may_download(session, actor=actor, result=result):
        raise Forbidden(
            f"result {result.id} stays on the Node: you cannot download every input it was computed from. "
            f"Ask for its release (POST /api/v1/requests with kind 'release' and result_id {result.id}); "
            "its privacy cost is charged to your budget if approved",
            details={"result_id": result.id, "epsilon": result.epsilon})
    audit.record(session, actor=actor, action="result.downloaded", target_type="result", target_id=result.id,
                 details={"sha256": result.sha256})
    return result


def canonical_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- lifecycle (called by the runner, in its own transactions) -------------------------------------------


def mark_started(session: Session, *, job_id: int, worker: str) -> None:
    job = get_job(session, job_id)
    if job.state in FINISHED_STATES:
        return
    now = utcnow()
    job.state, job.worker, job.heartbeat_at = "running", worker[:128], now
    job.started_at = job.started_at or now


def record_progress(session: Session, *, job_id: int, progress: float | None, metrics: list[dict[str, Any]] | None
                    ) -> None:
    job = get_job(session, job_id)
    if job.state in FINISHED_STATES:
        return
    job.heartbeat_at = utcnow()
    if progress is not None and math.isfinite(progress):
        job.progress = max(job.progress, min(1.0, float(progress)))
    if metrics is not None:
        job.metrics = metrics


def finish(session: Session, *, job_id: int, state: str, error: str | None = None) -> None:
    job = get_job(session, job_id)
    if job.state in FINISHED_STATES:
        return
    job.state, job.finished_at = state, utcnow()
    job.error = error[:2000] if error else None
    audit.record(session, actor=None, action=f"job.{state}", target_type="job", target_id=job.id,
                 details={"error": job.error} if job.error else {})


def requeue(session: Session, *, job_id: int, reason: str) -> None:
    job = get_job(session, job_id)
    job.state, job.worker, job.heartbeat_at, job.progress = "queued", None, None, 0.0
    job.error = f"attempt {job.attempts} lost: {reason}"[:2000]
    audit.record(session, actor=None, action="job.retried", target_type="job", target_id=job.id,
                 details={"reason": reason[:500], "attempt": job.attempts})


def complete(session: Session, *, job_id: int, done: dict[str, Any], settings: NodeSettings) -> Result:
    """Store the result of a finished task: the artifact's key and digest (or the value), lineage and the
    privacy event of what ran, with its ε at the Node's δ (None: not differentially private)."""
    from dp_accounting import NonPrivateDpEvent

    from grid_runtime.privacy import epsilon, event_from_dict, event_to_dict

    job = get_job(session, job_id)
    event = event_from_dict(done["event"])
    private = not isinstance(event, NonPrivateDpEvent)
    eps = epsilon(event, job.settings.get("delta", settings.delta)) if private else None
    if done["kind"] == "statistic":
        value = {"value": done["value"], "mechanism": done.get("mechanism"), "noise_scale": done.get("noise_scale")}
        sha, size, key = canonical_sha256(value), len(json.dumps(value)), None
    else:
        value, sha, size, key = None, done["sha256"], int(done["size"]), done["object_key"]
    result = Result(job_id=job.id, owner_id=job.owner_id, kind=done["kind"], object_key=key, value=value,
                    sha256=sha, size_bytes=size,
                    lineage={"job_id": job.id, "dataset_id": job.dataset_id, "inputs": job.inputs, "spec": job.spec,
                             "settings": job.settings, "events": [event_to_dict(event)] if private else [],
                             "steps": done.get("steps"), "zeroed_samples": done.get("zeroed_samples"),
                             "worker": job.worker, "attempts": job.attempts},
                    event=event_to_dict(event) if private else None, epsilon=eps,
                    delta=job.settings.get("delta", settings.delta) if private else 0.0)
    session.add(result)
    job.metrics = done.get("metrics") or job.metrics
    job.progress = 1.0
    session.flush()
    finish(session, job_id=job.id, state="succeeded")
    audit.record(session, actor=None, action="result.created", target_type="result", target_id=result.id,
                 details={"job_id": job.id, "epsilon": eps, "sha256": sha})
    return result


def user_of(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)
