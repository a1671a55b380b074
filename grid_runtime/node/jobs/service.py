"""Jobs and results: planning a job (spec, permissions, quotas, declared metadata, privacy cost), its
lifecycle, and what each reader sees of jobs and results.

Admission is split: this module *plans* a job (``plan_training``, ``plan_statistics``: every check that
depends on the request and on what owners declared, and the job's privacy event computed from its public
settings), and ``node.flows.admit`` charges the plan to the user's and every affected dataset's Rényi filter
and stores it (``store_job``) in one transaction. A job that is refused never reaches Ray; the runner
(`runner.py`) only ever submits jobs that were admitted, charged and stored.

Who sees what (``jobs.schemas``): the job's owner, before they may download its result, sees only fields that
are not functions of private data (``JobOut``, ``ResultOut``: no digest, size, counters, metrics or failure
text; a failure is its stable ``error_code`` and a generic message). Holders of ``triage_requests``
(officers) see every job and result with the officer-only fields (``JobOfficerOut``, ``ResultDetailOut``:
metrics, counters, the failure's detail, the artifact's HMAC fingerprint). Whoever may download a result sees
its sha256 and size too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grid_runtime.compute.contracts import (
    ERROR_DETAIL_CHARS,
    PUBLIC_ERROR_MESSAGES,
    ErrorCode,
    ModelDone,
    StatisticDone,
)
from grid_runtime.compute.states import INITIAL_STATE, JobKind, JobState, check_transition
from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unavailable
from grid_runtime.core.levels import Level
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node import lookup
from grid_runtime.node.audit import service as audit
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.jobs.models import Job, JobQuota, Result
from grid_runtime.node.jobs.schemas import (
    PUBLIC_INPUT_FIELDS,
    PUBLIC_LINEAGE_FIELDS,
    JobOfficerOut,
    JobOut,
    QuotaIn,
    QuotaOut,
    ResultDetailOut,
    ResultOut,
    StatisticsIn,
    TrainIn,
)
from grid_runtime.node.permissions.service import allows, effective_levels, require_level, resolve_user
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User

if TYPE_CHECKING:
    from dp_accounting import DpEvent

    from grid_runtime.node.deps import Actor

ACTIVE_STATES = tuple(str(state) for state in JobState if state.active)


# ---- lookups ---------------------------------------------------------------------------------------------


def get_job(session: Session, job_id: int) -> Job:
    return lookup.job(session, job_id)


def get_result(session: Session, result_id: int) -> Result:
    """The result with this id, or NotFound."""
    return lookup.result(session, result_id)


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


def _inputs(session: Session, *, actor: Actor, dataset: Dataset, roles: dict[str, str]) -> dict[str, Tensor]:
    """The tensors a job reads, each checked for ``compute`` (the most specific rule decides)."""
    found = {}
    for slot, role in roles.items():
        tensor = lookup.member(session, dataset, role)
        require_level(session, actor=actor, target_type="tensor", target_id=tensor.id, needed=Level.compute)
        found[slot] = tensor
    return found


def _input_record(tensor: Tensor, role: str) -> dict[str, Any]:
    return {"tensor_id": tensor.id, "role": role, "sha256": tensor.sha256, "shape": list(tensor.shape),
            "dtype": tensor.dtype}


@dataclass
class Planned:
    """A job that passed every check that depends on the request and on declared metadata, not yet stored nor
    charged: ``node.flows.admit`` charges its event and stores it (``store_job``)."""

    job: Job  # transient: not in the session yet
    event: DpEvent | None  # None: not differentially private
    rows: int  # N, the private rows the job reads (the first dimension of its inputs)
    tensor_ids: list[int]
    audit: dict[str, Any]
    weights: bytes | None = None


def _check_delta(delta: float, rows: int, dataset: Dataset) -> None:
    """δ fits the data: at most 1/(10·N) for the N private rows the job reads."""
    from grid_runtime.privacy import delta_fits_rows, max_delta_for_rows

    if not delta_fits_rows(delta, rows):
        raise InvalidInput(
            f"this Node's δ ({delta:g}) is above 1/(10·N) = {max_delta_for_rows(rows):.3g} for dataset "
            f"{dataset.name!r} (N = {rows} rows): with δ·N = {delta * rows:.3g}, a mechanism could release whole "
            "rows with non-negligible probability. The Node's operator has to lower its δ (GRID_NODE_DELTA) "
            "before jobs on this dataset are admitted", details={"rule": "delta_vs_rows", "delta": delta,
                                                                  "rows": rows, "max_delta": max_delta_for_rows(rows)})


_INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")


def _check_labels(*, dataset: Dataset, loss: str, labels: Tensor, output_shape: tuple[int, ...] | None) -> None:
    """What the owner declared must fit the job, so common failures are refused here with reasons that depend
    on declared metadata only (never on a Worker, where the failure itself would say something of the data)."""
    from grid_runtime.compute.contracts import CLASSIFICATION_LOSSES

    if loss not in CLASSIFICATION_LOSSES:
        return
    if labels.dtype not in _INTEGER_DTYPES:
        raise InvalidInput(f"loss {loss} needs class indices as labels; the labels tensor is {labels.dtype}",
                           details={"field": "loss", "labels_dtype": labels.dtype})
    if len(labels.shape) != 1:
        raise InvalidInput(f"loss {loss} needs one class index a row; the labels tensor has shape "
                           f"{list(labels.shape)}", details={"field": "labels"})
    if dataset.label_classes is None or output_shape is None:
        return
    width = int(output_shape[-1]) if output_shape else 1
    if width < dataset.label_classes:
        raise InvalidInput(
            f"dataset {dataset.name!r} declares {dataset.label_classes} label classes, but the model's output has "
            f"width {width}: its last layer must output one score a class for {loss}",
            details={"field": "spec", "label_classes": dataset.label_classes, "output_width": width})


def require_workers(settings: NodeSettings) -> None:
    """Unavailable when this Node runs no Workers (checked after the budget, like the old admission)."""
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


def plan_training(session: Session, *, actor: Actor, settings: NodeSettings, body: TrainIn) -> Planned:
    """Check a training job (or raise) and compute its privacy event; ``flows.admit`` charges and stores it.

    Initial weights, when given, are checked against the spec here; ``store_job`` keeps them in the object
    store, and the caller removes that object again (``discard_initial_weights``) if its commit fails."""
    from grid_runtime.compute.memory import estimate_training
    from grid_runtime.compute.memory import refusal as memory_refusal
    from grid_runtime.compute.spec import SpecError, layer_table, parse_spec
    from grid_runtime.privacy import calibrate_noise, dp_sgd_event, dp_sgd_plan, epsilon, event_to_dict

    try:
        spec = parse_spec(body.spec)
    except SpecError as exc:
        raise InvalidInput(str(exc), details={"field": "spec"}) from None
    dataset = lookup.dataset(session, body.dataset)
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
    output_shapes = spec.output_shapes()
    _check_labels(dataset=dataset, loss=body.loss, labels=labels,
                  output_shape=output_shapes[-1] if output_shapes else None)
    if body.dp is not None:
        _check_delta(settings.delta, rows, dataset)
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
    memory = estimate_training(spec, batch_size=body.batch_size, dp=body.dp is not None, optimizer=body.optimizer,
                               input_bytes=features.size_bytes + labels.size_bytes)
    if (reason := memory_refusal(memory, settings.worker_memory_bytes)) is not None:  # before anything is charged
        raise InvalidInput(reason, details={"field": "batch_size", "estimated_bytes": memory.breakdown(),
                                            "worker_memory_bytes": settings.worker_memory_bytes})
    job = Job(kind=JobKind.train.value, state=INITIAL_STATE.value, owner_id=actor.id, dataset_id=dataset.id,
              inputs={"features": _input_record(features, body.features),
                      "labels": _input_record(labels, body.labels)},
              spec=spec_json,
              settings={"loss": body.loss, "optimizer": body.optimizer, "lr": body.lr, "epochs": body.epochs,
                        "batch_size": body.batch_size, "dp": dp_settings, "seed": body.seed,
                        "delta": settings.delta, "parameters": spec.parameter_count(), "layers": len(spec.layers),
                        "initial_weights": None, "memory_bytes": memory.total},
              planned_event=event_to_dict(event) if event is not None else None, planned_epsilon=planned_epsilon,
              time_limit_seconds=time_limit, metrics=[])
    return Planned(job=job, event=event, rows=rows, tensor_ids=[features.id, labels.id], weights=weights,
                   audit={"kind": "train", "dataset_id": dataset.id, "planned_epsilon": planned_epsilon,
                          "dp": dp_settings is not None, "layers": [r["layer"] for r in layer_table(spec)]})


def store_job(session: Session, *, actor: Actor, planned: Planned, store: ObjectStore | None = None) -> Job:
    """Store an admitted (and charged) job queued, with its initial weights in the object store; audited."""
    job = planned.job
    if planned.weights is not None:
        assert store is not None, "a job with initial weights needs the object store"
        stored = store.put_stream(f"{INITIAL_WEIGHTS_PREFIX}{uuid.uuid4().hex}.safetensors",
                                  io.BytesIO(planned.weights))
        job.settings = {**job.settings, "initial_weights": {"key": stored.key, "sha256": stored.sha256}}
    session.add(job)
    session.flush()
    audit.record(session, actor=actor, action="job.submitted", target_type="job", target_id=job.id,
                 details=planned.audit)
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


def plan_statistics(session: Session, *, actor: Actor, settings: NodeSettings, body: StatisticsIn) -> Planned:
    """Check a DP statistic (or raise) and compute its privacy event; ``flows.admit`` charges and stores it."""
    from grid_runtime.compute.statistics import StatisticsError
    from grid_runtime.compute.tasks import planned_statistic_event
    from grid_runtime.privacy import epsilon, event_to_dict

    dataset = lookup.dataset(session, body.dataset)
    tensor = _inputs(session, actor=actor, dataset=dataset, roles={"column": body.member})["column"]
    if len(tensor.shape) not in (1, 2):
        raise InvalidInput(f"member {body.member!r} has shape {tensor.shape}: statistics need 1 or 2 dimensions")
    if body.column is not None and (len(tensor.shape) != 2 or body.column >= tensor.shape[1]):
        raise InvalidInput(f"column {body.column} is outside member {body.member!r} of shape {tensor.shape}",
                           details={"field": "column"})
    params: dict[str, Any] = {"statistic": body.statistic, "epsilon": body.epsilon, "mechanism": body.mechanism,
                              "column": body.column}
    if body.columns is not None:  # several columns, one task, one composed event (compute.tasks._per_column)
        width = int(tensor.shape[1]) if len(tensor.shape) == 2 else 0
        columns = list(range(width)) if body.columns == "all" else list(body.columns)
        if body.statistic not in ("sum", "mean") or body.column is not None or not width:
            raise InvalidInput("columns takes a sum or a mean of a 2-D member, without column",
                               details={"field": "columns"})
        if len(set(columns)) != len(columns) or max(columns) >= width:
            raise InvalidInput(f"columns must be distinct columns of member {body.member!r} (0 to {width - 1})",
                               details={"field": "columns"})
        params["columns"] = columns
        params["column_bounds"] = [list(_declared_bounds(dataset, body.member, c)) for c in columns]
    elif body.statistic != "count":
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
    rows = int(tensor.shape[0])
    _check_delta(settings.delta, rows, dataset)
    job = Job(kind=JobKind.statistics.value, state=INITIAL_STATE.value, owner_id=actor.id, dataset_id=dataset.id,
              inputs={"column": _input_record(tensor, body.member)}, spec={},
              settings={**params, "delta": settings.delta}, planned_event=event_to_dict(event),
              planned_epsilon=planned, time_limit_seconds=time_limit, metrics=[])
    return Planned(job=job, event=event, rows=rows, tensor_ids=[tensor.id],
                   audit={"kind": "statistics", "statistic": body.statistic, "dataset_id": dataset.id,
                          "planned_epsilon": planned})


# ---- reading and cancelling ------------------------------------------------------------------------------


def _public_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    return {slot: {k: record[k] for k in PUBLIC_INPUT_FIELDS if k in record} for slot, record in inputs.items()}


def job_out(session: Session, job: Job, *, actor: Actor) -> JobOut:
    """The job as ``actor`` may see it: officers get ``JobOfficerOut``; everyone else (its owner) only the
    public fields, with a failure as its code and the code's generic message."""
    from grid_runtime.compute.spec import layer_table

    result_id = session.scalar(select(Result.id).where(Result.job_id == job.id))
    code = job.error_code
    if code is None and job.state == JobState.failed.value:
        code = ErrorCode.internal.value  # failed before failures had codes: the generic answer
    error = PUBLIC_ERROR_MESSAGES[ErrorCode(code)] if code in set(ErrorCode) else None
    if code is None and job.state == JobState.cancelled.value:
        error = job.error  # the Node's public word on a cancellation (``finish(note=...)``)
    public: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "state": job.state, "owner_id": job.owner_id, "dataset_id": job.dataset_id,
        "inputs": _public_inputs(job.inputs), "spec": job.spec, "settings": job.settings,
        "planned_event": job.planned_event, "planned_epsilon": job.planned_epsilon, "progress": job.progress,
        "error_code": code, "error": error,
        "time_limit_seconds": job.time_limit_seconds, "cancel_requested": job.cancel_requested,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "result_id": result_id,
        "layers": layer_table(job.spec) if job.kind == JobKind.train.value and job.spec else None,
    }
    if _is_officer(actor):
        return JobOfficerOut(**public, metrics=list(job.metrics), error_detail=job.error_detail or (
            job.error if job.error_code is None else None), attempts=job.attempts, worker=job.worker)
    return JobOut(**public)


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
    if JobState(job.state).terminal:
        raise Conflict(f"job {job.id} has already {job.state}", details={"state": job.state})
    if not job.cancel_requested:
        job.cancel_requested = True
        audit.record(session, actor=actor, action="job.cancel_requested", target_type="job", target_id=job.id)
    session.flush()
    return job


# ---- results ---------------------------------------------------------------------------------------------


def may_download_inputs(session: Session, *, user_id: int, tensor_ids: list[int]) -> bool:
    """Whether the user could download every one of these tensors (none: False)."""
    if not tensor_ids:
        return False
    levels = effective_levels(session, user_id=user_id, tensor_ids=tensor_ids)
    return all(t in levels and allows(levels[t], Level.download) for t in tensor_ids)


def result_downloadable_without_release(session: Session, *, user_id: int, result: Result) -> bool:
    """The inheritance rule: the owner may download a result freely only if they could download every input."""
    if result.owner_id != user_id:
        return False
    tensor_ids = [int(i["tensor_id"]) for i in result.lineage.get("inputs", {}).values()]
    return may_download_inputs(session, user_id=user_id, tensor_ids=tensor_ids)


def read_result(session: Session, *, actor: Actor, result_id: int) -> Result:
    result = get_result(session, result_id)
    if result.owner_id != actor.id and not _is_officer(actor):
        raise NotFound(f"no result with id {result_id}", details={"result_id": result_id})
    return result


def result_out(result: Result, *, actor: Actor, downloadable: bool, fingerprint: str | None = None) -> ResultOut:
    """The result as ``actor`` may see it. Who may download it, and officers, get ``ResultDetailOut`` (the
    sha256 only if they may download it, the HMAC ``fingerprint`` only if they are an officer); its owner
    before a release gets the public fields alone. ``node.flows`` decides ``downloadable``."""
    from grid_runtime.privacy import describe_event, event_from_dict

    description = describe_event(event_from_dict(result.event)) if result.event else "not differentially private"
    lineage = dict(result.lineage)
    public_lineage = {k: lineage[k] for k in PUBLIC_LINEAGE_FIELDS if k in lineage}
    if "inputs" in public_lineage:
        public_lineage["inputs"] = _public_inputs(public_lineage["inputs"])
    public: dict[str, Any] = {
        "id": result.id, "job_id": result.job_id, "owner_id": result.owner_id, "kind": result.kind,
        "lineage": public_lineage, "event": result.event, "event_description": description,
        "epsilon": result.epsilon, "delta": result.delta, "non_private": result.event is None,
        "created_at": result.created_at, "downloadable": downloadable,
    }
    officer = _is_officer(actor)
    if not (officer or downloadable):
        return ResultOut(**public)
    if not officer:  # figures computed on private data (compute.contracts.OFFICER_ONLY_FIELDS) stay with officers
        lineage.pop("officer_only", None)
        # A released result is not a licence to see its inputs' digests: an input's sha256 is a function of the
        # whole private column (tests/attacks/test_hash_oracles.py). Who may download an input reads it there.
        if "inputs" in lineage:
            lineage["inputs"] = _public_inputs(lineage["inputs"])
    return ResultDetailOut(**{**public, "lineage": lineage}, sha256=result.sha256 if downloadable else None,
                           fingerprint=fingerprint if officer else None, size_bytes=result.size_bytes)


def check_download(result: Result, *, downloadable: bool) -> None:
    """Forbidden, naming how to get it, unless the caller may download ``result`` (``flows`` decides)."""
    if not downloadable:
        raise Forbidden(
            f"result {result.id} stays on the Node: you cannot download every input it was computed from. "
            f"Ask for its release (POST /api/v1/requests with kind 'release', target_type 'result' and target_id "
            f"{result.id}); its privacy cost was charged when the job was admitted, and an officer decides "
            "whether it may leave", details={"result_id": result.id, "epsilon": result.epsilon})


def record_download(session: Session, *, actor: Actor, result: Result) -> None:
    audit.record(session, actor=actor, action="result.downloaded", target_type="result", target_id=result.id,
                 details={"sha256": result.sha256})


def canonical_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- lifecycle (called by the runner, in its own transactions) -------------------------------------------


def mark_started(session: Session, *, job_id: int, worker: str) -> None:
    job = get_job(session, job_id)
    current = JobState(job.state)
    if current.terminal or current is JobState.running:
        return  # a late report after a cancel or a finish: the first word stands
    check_transition(job.id, current, JobState.running)
    now = utcnow()
    job.state, job.worker, job.heartbeat_at = JobState.running.value, worker[:128], now
    job.started_at = job.started_at or now


def record_progress(session: Session, *, job_id: int, progress: float | None, metrics: list[dict[str, Any]] | None
                    ) -> None:
    """A running job's progress and its officer-only metrics (per-epoch figures on private data)."""
    job = get_job(session, job_id)
    if JobState(job.state).terminal:
        return
    job.heartbeat_at = utcnow()
    if progress is not None and math.isfinite(progress):
        job.progress = max(job.progress, min(1.0, float(progress)))
    if metrics is not None:
        job.metrics = metrics


def finish(session: Session, *, job_id: int, state: JobState | str, error_code: ErrorCode | str | None = None,
           error_detail: str | None = None, note: str | None = None) -> None:
    """Move a job to a terminal state. A failure is stored as its stable ``error_code``, the generic text its
    owner reads (``error``: `PUBLIC_ERROR_MESSAGES`, a function of the code alone) and ``error_detail`` (the
    exception or the reason, which can quote private data: officers only, and not in the audit log). ``note``
    is a public word on a cancellation. A job already finished stays as it is (a late report loses)."""
    job = get_job(session, job_id)
    current, target = JobState(job.state), JobState(state)
    if current.terminal:
        return
    check_transition(job.id, current, target)
    job.state, job.finished_at = target.value, utcnow()
    if target is JobState.failed:
        code = ErrorCode(error_code) if error_code is not None else ErrorCode.internal
        job.error_code, job.error = code.value, PUBLIC_ERROR_MESSAGES[code]
        job.error_detail = (error_detail or "")[:ERROR_DETAIL_CHARS] or None
    else:
        job.error_code, job.error_detail = None, None
        job.error = note[:2000] if note else None
    audit.record(session, actor=None, action=f"job.{target.value}", target_type="job", target_id=job.id,
                 details={"error_code": job.error_code} if job.error_code else {})


def requeue(session: Session, *, job_id: int, reason: str) -> None:
    """Queue a job whose Worker was lost again (another attempt); the reason is kept for officers."""
    job = get_job(session, job_id)
    current = JobState(job.state)
    if current is not JobState.queued:  # lost before it started: it is still queued
        check_transition(job.id, current, JobState.queued)
    job.state, job.worker, job.heartbeat_at, job.progress = JobState.queued.value, None, None, 0.0
    job.error = f"attempt {job.attempts} was lost with its Worker; the job is queued again"
    job.error_code, job.error_detail = ErrorCode.worker_lost.value, f"attempt {job.attempts}: {reason}"[:2000]
    audit.record(session, actor=None, action="job.retried", target_type="job", target_id=job.id,
                 details={"reason": reason[:500], "attempt": job.attempts})


def complete(session: Session, *, job_id: int, done: ModelDone | StatisticDone, settings: NodeSettings) -> Result:
    """Store the result of a finished task: the artifact's key and digest (or the value), lineage and the
    privacy event of what ran, with its ε at the Node's δ (None: not differentially private).

    The report's officer-only figures (`contracts.OFFICER_ONLY_FIELDS`: zeroed per-sample gradients, run time)
    go to ``lineage["officer_only"]``; the per-epoch metrics to ``job.metrics`` (shown to officers only)."""
    from dp_accounting import NonPrivateDpEvent

    from grid_runtime.privacy import epsilon, event_from_dict, event_to_dict

    job = get_job(session, job_id)
    event = event_from_dict(done.event)
    private = not isinstance(event, NonPrivateDpEvent)
    eps = epsilon(event, job.settings.get("delta", settings.delta)) if private else None
    officer_only: dict[str, Any] = {}
    steps: int | None = None
    if isinstance(done, StatisticDone):
        value = {"value": done.value, "mechanism": done.mechanism, "noise_scale": done.noise_scale}
        sha, size, key = canonical_sha256(value), len(json.dumps(value)), None
    else:
        value, sha, size, key = None, done.sha256, done.size, done.object_key
        officer_only = {"zeroed_samples": done.zeroed_samples, "seconds": round(done.seconds, 3)}
        steps = done.steps
    result = Result(job_id=job.id, owner_id=job.owner_id, kind=done.kind, object_key=key, value=value,
                    sha256=sha, size_bytes=size,
                    lineage={"job_id": job.id, "dataset_id": job.dataset_id, "inputs": job.inputs, "spec": job.spec,
                             "settings": job.settings, "events": [event_to_dict(event)] if private else [],
                             "steps": steps, "worker": job.worker, "attempts": job.attempts,
                             "officer_only": officer_only},
                    event=event_to_dict(event) if private else None, epsilon=eps,
                    delta=job.settings.get("delta", settings.delta) if private else 0.0)
    session.add(result)
    job.metrics = [m.model_dump() for m in done.metrics] or job.metrics
    job.progress = 1.0
    session.flush()
    finish(session, job_id=job.id, state=JobState.succeeded)
    audit.record(session, actor=None, action="result.created", target_type="result", target_id=result.id,
                 details={"job_id": job.id, "epsilon": eps, "sha256": sha})
    return result


def user_of(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)
