"""Every transaction that crosses domains, read top-down: admitting a job and charging it; filing a release;
deciding a request and applying its effect; "may this user download this"; the officer's cost card.

Privacy is charged when private data is touched (docs/privacy.md): a job's event is debited from the user's
Rényi filter and from every dataset that holds one of its inputs in the transaction that admits the job, and
a job the filters cannot admit is refused before any Worker sees it. A release spends nothing more: it
decides whether an artifact that was paid for may leave. Only what was never charged at admission (a raw
private tensor, a result of a job admitted before charging moved to admission) is charged when its release
is approved.

The functions run in the caller's transaction (the route's ``DB``); what must happen only once it has
committed (the decision webhook) is returned as a callable for the route to schedule as a background task,
which Starlette runs after the response, so after the commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import BudgetExceeded, Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node import lookup
from grid_runtime.node.budget import fingerprints, ledger
from grid_runtime.node.budget import service as budget
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.jobs import service as jobs
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.jobs.schemas import ResultOut, StatisticsIn, TrainIn
from grid_runtime.node.notifications import service as notifications
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.models import Request
from grid_runtime.node.requests.states import DECISIONS, RequestKind, RequestState
from grid_runtime.privacy import accounting, reading

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

Later = Callable[[], None]
HISTORY_LIMIT = 20


def _noop() -> None:
    return None


# --- admitting a job: plan, charge, store ----------------------------------------------------------------


def submit_training(session: Session, *, actor: Actor, settings: NodeSettings, body: TrainIn,
                    store: ObjectStore) -> Job:
    """Admit a training job: check it (``jobs.plan_training``), charge it, store it queued."""
    return admit(session, actor=actor, settings=settings, planned=jobs.plan_training(
        session, actor=actor, settings=settings, body=body), store=store)


def submit_statistics(session: Session, *, actor: Actor, settings: NodeSettings, body: StatisticsIn) -> Job:
    """Admit a DP statistic: check it (``jobs.plan_statistics``), charge it, store it queued."""
    return admit(session, actor=actor, settings=settings, planned=jobs.plan_statistics(
        session, actor=actor, settings=settings, body=body), store=None)


def admit(session: Session, *, actor: Actor, settings: NodeSettings, planned: jobs.Planned,
          store: ObjectStore | None) -> Job:
    """Charge a planned job and store it, in one transaction, or refuse it before anything runs.

    1. A job without DP on data the user could not download runs only where the node's privacy settings
       allow such jobs and an administrator allowed this user (Forbidden naming the rule otherwise). On data
       the user may download whole, it touches nothing private to them: it is admitted and charged nothing.
    2. Under the user's row lock and the caps of every dataset that holds one of its inputs, the Rényi filter
       must admit its event for the user and each of those datasets (BudgetExceeded with the reason).
    3. The job is stored and its event appended to the ledger, charged to the user and to those datasets
       (an event outside DP is recorded as such: the filter cannot count it).
    """
    cfg = budget.config(session, settings)
    charged = sorted(set(lookup.datasets_holding(session, planned.tensor_ids))
                     | ({planned.job.dataset_id} if planned.job.dataset_id is not None else set()))
    if planned.event is None and jobs.may_download_inputs(session, user_id=actor.id,
                                                          tensor_ids=planned.tensor_ids):
        jobs.require_workers(settings)
        return jobs.store_job(session, actor=actor, planned=planned, store=store)
    if planned.event is None:
        _check_non_private_allowed(session, actor=actor, cfg=cfg)
    user = budget.lock_budgets(session, user_id=actor.id, dataset_ids=charged)
    cost = budget.cost_of(planned.event, cfg)
    if not cost.non_private:
        try:
            budget.check_budget(session, user=user, dataset_ids=charged, cost=cost, cfg=cfg)
        except BudgetExceeded as exc:
            raise BudgetExceeded("this job cannot be admitted: " + exc.message, details=exc.details) from None
    jobs.require_workers(settings)
    job = jobs.store_job(session, actor=actor, planned=planned, store=store)
    ledger.record(session, cfg, user_id=user.id, user_email=user.email, cost=cost, dataset_ids=charged,
                  dataset_id=job.dataset_id, job_id=job.id)
    return job


def _check_non_private_allowed(session: Session, *, actor: Actor, cfg: budget.PrivacyConfig) -> None:
    if not cfg.non_private_jobs:
        raise Forbidden("this Node runs no jobs without differential privacy (its privacy settings' "
                        "non_private_jobs is off); give dp settings", details={"rule": "non_private_jobs"})
    if not budget.non_private_allowed(session, actor.id):
        raise Forbidden("you are not allowed jobs without differential privacy; an administrator may allow "
                        "you (PUT /budget/users/{you}/non-private)", details={"rule": "non_private_user"})


# --- may this user download this --------------------------------------------------------------------------


def _fingerprints_of(settings: NodeSettings, *, target_type: str, sha256: str) -> set[str]:
    """What a release of this artifact may have recorded: its HMAC fingerprint (or, filed before keyed
    fingerprints, its sha256)."""
    return {fingerprints.fingerprint(settings.state_dir, target_type=target_type, sha256=sha256), sha256}


def may_download(session: Session, *, actor: Actor, result: Result, settings: NodeSettings) -> bool:
    """Its owner may download a result if they could download every input (the inheritance rule), or if a
    release of theirs for exactly this artifact was approved."""
    if jobs.result_downloadable_without_release(session, user_id=actor.id, result=result):
        return True
    return result.owner_id == actor.id and requests.released_request(
        session, user_id=actor.id, target_type="result", target_id=result.id,
        fingerprints=_fingerprints_of(settings, target_type="result", sha256=result.sha256)) is not None


def result_out(session: Session, *, actor: Actor, result_id: int, settings: NodeSettings) -> ResultOut:
    result = jobs.read_result(session, actor=actor, result_id=result_id)
    officer = actor.can(Capability.triage_requests)
    return jobs.result_out(result, actor=actor, downloadable=may_download(session, actor=actor, result=result,
                                                                          settings=settings),
                           fingerprint=fingerprints.fingerprint(settings.state_dir, target_type="result",
                                                                sha256=result.sha256) if officer else None)


def download_result(session: Session, *, actor: Actor, result_id: int, settings: NodeSettings) -> Result:
    """The result if the caller may download it (else Forbidden naming how to get it); audited."""
    result = jobs.read_result(session, actor=actor, result_id=result_id)
    jobs.check_download(result, downloadable=may_download(session, actor=actor, result=result, settings=settings))
    jobs.record_download(session, actor=actor, result=result)
    return result


# --- what a release is about --------------------------------------------------------------------------------


@dataclass
class Artifact:
    """What a release request is about: a result or a private tensor, with its fingerprint, its cost and
    whether that cost was already charged (at the job's admission)."""

    target_type: str  # "result" | "tensor"
    target_id: int
    sha256: str
    fingerprint: str
    owner_id: int | None
    event: dict[str, Any] | None  # what was (or is to be) charged; None: not differentially private
    paid: bool  # charged when its job was admitted
    dataset_ids: list[int] = field(default_factory=list)  # every dataset charged (or to be charged)
    rows: int | None = None  # N, the private rows it was computed from
    job: Job | None = None

    @property
    def dataset_id(self) -> int | None:
        if self.job is not None and self.job.dataset_id is not None:
            return self.job.dataset_id
        return self.dataset_ids[0] if self.dataset_ids else None


def _rows_of(inputs: dict[str, Any]) -> int | None:
    firsts = [int(r["shape"][0]) for r in inputs.values() if isinstance(r, dict) and r.get("shape")]
    return max(firsts) if firsts else None


def artifact(session: Session, *, target_type: str, target_id: int, settings: NodeSettings) -> Artifact:
    """The artifact behind a release target, as it is now (NotFound if it is gone)."""
    if target_type == "result":
        result = lookup.result(session, target_id)
        job = session.get(Job, result.job_id)
        entry = ledger.job_entry(session, result.job_id)
        if entry is not None:  # charged at admission: the event charged and the datasets it was charged to
            event = None if entry.non_private else entry.event
            dataset_ids = ledger.charged_datasets(session, [entry.id])[entry.id]
        else:  # admitted before charging moved to admission: charged on release, following the data
            event = result.event
            tensor_ids = [int(r["tensor_id"]) for r in result.lineage.get("inputs", {}).values()]
            dataset_ids = sorted(set(lookup.datasets_holding(session, tensor_ids))
                                 | ({job.dataset_id} if job is not None and job.dataset_id is not None else set()))
        return Artifact("result", result.id, result.sha256,
                        fingerprints.fingerprint(settings.state_dir, target_type="result", sha256=result.sha256),
                        result.owner_id, event, entry is not None, dataset_ids,
                        _rows_of(job.inputs) if job is not None else None, job)
    if target_type == "tensor":
        tensor = lookup.tensor(session, target_id)
        return Artifact("tensor", tensor.id, tensor.sha256,
                        fingerprints.fingerprint(settings.state_dir, target_type="tensor", sha256=tensor.sha256),
                        tensor.uploader_id, None, False, lookup.datasets_holding(session, [tensor.id]),
                        int(tensor.shape[0]) if tensor.shape else None)
    raise InvalidInput(f"a release is of a result or a tensor, not {target_type!r}")


def _downloadable_without_release(session: Session, *, user_id: int, target: Artifact) -> bool:
    if target.target_type == "tensor":
        decision = permissions.effective_level(session, user_id=user_id, target_type="tensor",
                                               target_id=target.target_id)
        return permissions.allows(decision.level, Level.download)
    return jobs.result_downloadable_without_release(session, user_id=user_id,
                                                    result=lookup.result(session, target.target_id))


def _cost_payload(cost: ledger.Cost) -> dict[str, Any]:
    return {
        "event": cost.event, "non_private": cost.non_private, "mechanism": cost.mechanism,
        "epsilon": None if cost.non_private else cost.epsilon,
        "rdp": None if cost.non_private else cost.rdp, "rdp_order": cost.order, "delta": cost.delta,
    }


# --- filing a release --------------------------------------------------------------------------------------


def file_release(session: Session, *, actor: Actor, target_type: str, target_id: int, reason: str,
                 settings: NodeSettings) -> tuple[Request, Later]:
    """File a release request for a result (only the user who ran its job) or a private tensor.

    The payload carries the cost already paid (or, for what was never charged, the cost approval will
    charge) for the officer's card, and the artifact's fingerprint (officers only). Decided at once:
    ``auto_denied`` for something not differentially private under the ``dp_only`` release policy, or for an
    unpaid private cost the filter refuses; ``auto_approved`` when an officer's policy covers it (never for a
    requester holding triage_requests, nor by a policy of the requester's own, never above the node's policy
    cap, never for something not differentially private). Otherwise pending. 409 if the caller may download
    it already, or already has a pending or approved release for it. Auto-decisions are decisions too (the
    webhook hears them).
    """
    cfg = budget.config(session, settings)
    requests.expire_overdue(session)
    target = artifact(session, target_type=target_type, target_id=target_id, settings=settings)
    if target_type == "result" and target.owner_id != actor.id:
        raise Forbidden(f"result {target_id} is not yours; only the user who ran its job may ask for its release",
                        details={"rule": "result_owner"})
    # Lock first: concurrent filings by one user (and approvals) serialize here on PostgreSQL too.
    user = budget.lock_budgets(session, user_id=actor.id, dataset_ids=target.dataset_ids)
    if _downloadable_without_release(session, user_id=actor.id, target=target):
        raise Conflict(f"you may already download {target_type} {target_id}; no release is needed",
                       details={"target_type": target_type, "target_id": target_id})
    existing = requests.released_request(
        session, user_id=actor.id, target_type=target_type, target_id=target_id,
        fingerprints=_fingerprints_of(settings, target_type=target_type, sha256=target.sha256))
    if existing is None:
        pending = requests.release_requests(session, user_id=actor.id, target_type=target_type,
                                            target_id=target_id, states=(str(RequestState.pending),))
        existing = pending[0] if pending else None
    if existing is not None:
        raise Conflict(f"you already have a {existing.state} release request for {target_type} {target_id} "
                       f"(request {existing.id})", details={"request_id": existing.id, "state": existing.state})

    cost = budget.cost_of(target.event, cfg)
    payload: dict[str, Any] = {
        "fingerprint": target.fingerprint, "dataset_id": target.dataset_id, "dataset_ids": target.dataset_ids,
        **_cost_payload(cost), "paid": target.paid, "job_id": target.job.id if target.job else None,
        "rows": target.rows, "release_policy": cfg.release_policy,
    }
    state, note = RequestState.pending, None
    if cost.non_private:
        if cfg.release_policy == "dp_only":
            state = RequestState.auto_denied
            note = (f"{target_type} {target_id} is not differentially private, so its privacy cost is "
                    "infinite; this Node's release policy (dp_only) releases only differentially private "
                    "results")
        else:
            note = "not differentially private: flagged for an officer (release policy allow_non_private)"
    else:
        refused = None
        if not target.paid:
            try:
                budget.check_budget(session, user=user, dataset_ids=target.dataset_ids, cost=cost, cfg=cfg)
            except BudgetExceeded as exc:
                refused = exc
        if refused is not None:
            state, note = RequestState.auto_denied, refused.message
            payload["refusal"] = refused.details
        else:
            policy = budget.matching_policy(session, requester=user, dataset_ids=target.dataset_ids, cost=cost,
                                            cfg=cfg)
            if policy is not None:
                state = RequestState.auto_approved
                where = "" if policy.dataset_id is None else f" on dataset {policy.dataset_id}"
                note = (f"auto-approved by release policy {policy.id} (private releases up to ε "
                        f"{policy.max_epsilon:g}{where})")
                payload["policy_id"] = policy.id
    request = requests.create_request(
        session, actor=actor, requester_id=actor.id, kind=RequestKind.release, reason=reason.strip(),
        target_type=target_type, target_id=target_id, payload=payload, state=state,
        note=note if state != RequestState.pending else None,
        expires_at=utcnow() + cfg.request_ttl if state == RequestState.pending else None,
    )
    if state == RequestState.auto_approved and not target.paid:
        _charge_release(session, request=request, target=target, cost=cost, cfg=cfg)
    return request, after_decision(session, request, settings)


def _charge_release(session: Session, *, request: Request, target: Artifact, cost: ledger.Cost,
                    cfg: budget.PrivacyConfig) -> None:
    user = lookup.user(session, request.requester_id)
    ledger.record(session, cfg, user_id=user.id, user_email=user.email, cost=cost, dataset_ids=target.dataset_ids,
                  dataset_id=target.dataset_id, request_id=request.id,
                  result_id=target.target_id if target.target_type == "result" else None,
                  tensor_id=target.target_id if target.target_type == "tensor" else None)


# --- deciding a request and applying its effect --------------------------------------------------------------


def approve(session: Session, *, actor: Actor, request_id: int, note: str | None, fingerprint: str | None,
            settings: NodeSettings) -> tuple[Request, Later]:
    """Approve a pending request and apply what its kind grants, in one transaction:

    - ``access``: the requester's grant is created or raised;
    - ``release``: the officer's fingerprint (if given) must be the request's and the artifact unchanged;
      what was paid at admission is not charged again; what was never charged is charged now, under the
      filter (``_approve_release``);
    - ``budget``: the requester's budget grows by the ε asked for (two-person rules: ``budget.raise_budget``).

    Nobody decides their own request (``requests.lock_for_decision``).
    """
    request = requests.lock_for_decision(session, actor=actor, request_id=request_id,
                                         to_state=RequestState.approved)
    kind = RequestKind(request.kind)
    if fingerprint is not None and kind is not RequestKind.release:
        raise InvalidInput("a fingerprint only applies to release requests")
    if kind is RequestKind.access:
        requests.grant_access(session, request=request, actor=actor)
    elif kind is RequestKind.release:
        _approve_release(session, request=request, fingerprint=fingerprint, settings=settings)
    elif kind is RequestKind.budget:
        budget.raise_budget(session, request=request, actor=actor)
    request = requests.transition(session, request=request, to_state=RequestState.approved, actor=actor, note=note)
    return request, after_decision(session, request, settings)


def _approve_release(session: Session, *, request: Request, fingerprint: str | None,
                     settings: NodeSettings) -> None:
    assert request.target_type is not None and request.target_id is not None
    recorded = requests.recorded_fingerprint(request)
    if fingerprint is not None and (recorded is None or fingerprint.lower() != recorded):
        raise Conflict(f"fingerprint {fingerprint} is not the one of request {request.id}; the artifact you "
                       "inspected is not the one requested (read the fingerprint on its cost card)",
                       details={"request_id": request.id})
    try:
        target = artifact(session, target_type=request.target_type, target_id=request.target_id, settings=settings)
    except NotFound as exc:
        raise Conflict(f"{request.target_type} {request.target_id} no longer exists; deny request {request.id} "
                       "instead", details={"request_id": request.id}) from exc
    if recorded not in _fingerprints_of(settings, target_type=target.target_type, sha256=target.sha256):
        raise Conflict(f"{request.target_type} {request.target_id} changed since request {request.id} was filed; "
                       "deny it and let the requester ask again", details={"request_id": request.id})
    if request.payload.get("paid"):
        return  # charged when its job was admitted: a release spends nothing more
    cfg = budget.config(session, settings)
    cost = budget.cost_of(request.payload.get("event"), cfg)
    user = budget.lock_budgets(session, user_id=request.requester_id, dataset_ids=target.dataset_ids)
    if not cost.non_private:
        budget.check_budget(session, user=user, dataset_ids=target.dataset_ids, cost=cost, cfg=cfg)
    _charge_release(session, request=request, target=target, cost=cost, cfg=cfg)


def deny(session: Session, *, actor: Actor, request_id: int, reason: str,
         settings: NodeSettings) -> tuple[Request, Later]:
    request = requests.deny(session, actor=actor, request_id=request_id, reason=reason)
    return request, after_decision(session, request, settings)


def after_decision(session: Session, request: Request, settings: NodeSettings) -> Later:
    """The webhook delivery for ``request`` if it was decided and the node has a webhook (else a no-op)."""
    if RequestState(request.state) not in DECISIONS:
        return _noop
    url = budget.config(session, settings).webhook_url
    if not url:
        return _noop
    payload = notifications.decision_payload(request)
    secret = notifications.signing_secret(settings.state_dir)

    def deliver() -> None:
        notifications.deliver(url, secret, payload, allow_private=settings.webhook_allow_private,
                              max_per_minute=settings.webhook_max_per_minute)

    return deliver


# --- downloading what a release released ---------------------------------------------------------------------


def released_artifact(session: Session, *, actor: Actor, request_id: int,
                      settings: NodeSettings) -> tuple[Request, Artifact]:
    """The approved release ``request_id`` and its artifact, for its requester only (Forbidden otherwise);
    Conflict if it is not approved or the artifact changed since."""
    request = requests.get_request(session, request_id)
    if request.kind != RequestKind.release:
        raise InvalidInput(f"request {request_id} is a {request.kind} request, not a release")
    if request.requester_id != actor.id:
        raise Forbidden(f"only the requester of release {request_id} may download what it released")
    if request.state not in requests.RELEASED_STATES:
        raise Conflict(f"release request {request_id} is {request.state}"
                       + (f": {request.decision_note}" if request.decision_note else ""),
                       details={"request_id": request_id, "state": request.state, "reason": request.decision_note})
    assert request.target_type is not None and request.target_id is not None
    target = artifact(session, target_type=request.target_type, target_id=request.target_id, settings=settings)
    if requests.recorded_fingerprint(request) not in _fingerprints_of(settings, target_type=target.target_type,
                                                                      sha256=target.sha256):
        raise Conflict(f"{request.target_type} {request.target_id} changed since it was released")
    return request, target


# --- the cost card -------------------------------------------------------------------------------------------


def _figure(value: float) -> float | None:
    return None if math.isinf(value) else value


def _remaining_after(spent: ledger.Spent, cost: ledger.Cost, cap: float) -> float | None:
    if math.isinf(cost.rdp):
        return None
    return accounting.remaining_epsilon(spent.rdp + cost.rdp, cap, spent.delta, spent.order)


def _side(spent: ledger.Spent, cost: ledger.Cost, cap: float) -> dict[str, Any]:
    after = spent.epsilon_with(cost)
    return {
        "cap_epsilon": cap,
        "epsilon_before": spent.epsilon,
        "epsilon_after": _figure(after),
        "simple_sum_before": spent.simple_sum,
        "simple_sum_after": _figure(spent.simple_sum + cost.epsilon),
        "remaining_before": spent.remaining(cap),
        "remaining_after": _remaining_after(spent, cost, cap),
        "events": spent.events,
        "non_private_events": spent.non_private_events,
        "within_cap": not math.isinf(after) and after <= cap + 1e-12,
    }


def _spent_before(session: Session, cfg: budget.PrivacyConfig, request: Request, **scope: Any) -> ledger.Spent:
    """What was spent without this request's own charge (at its job's admission, or at its approval)."""
    job_id = request.payload.get("job_id") if request.payload.get("paid") else None
    return budget.spent(session, cfg, excluding_job=job_id, excluding_request=request.id, **scope)


def cost_card(session: Session, *, request: Request, settings: NodeSettings) -> dict[str, Any]:
    """Everything an officer needs to decide a release: mechanism and settings, the cost (already paid at
    admission, or to be charged on approval), the user's and each dataset's ε before and after it, what still
    fits, the user's ceiling, δ·N, the requester's history, the model as a layer table, the officer-only
    metrics, a flag for anything not differentially private, and a plain reading of the user's enforced
    cumulative ε after it."""
    cfg = budget.config(session, settings)
    payload = request.payload or {}
    cost = budget.cost_of(payload.get("event"), cfg)
    user = lookup.user(session, request.requester_id)
    user_side = _side(_spent_before(session, cfg, request, user_id=user.id), cost, user.budget_epsilon)
    rows = payload.get("rows")
    card: dict[str, Any] = {
        "mechanism": cost.mechanism,
        "non_private": cost.non_private,
        "flag": ("NOT DIFFERENTIALLY PRIVATE: releasing it may reveal anything about the rows it was computed "
                 "from; it is never auto-approved") if cost.non_private else None,
        "paid_at_admission": bool(payload.get("paid")),
        "epsilon": _figure(cost.epsilon),
        "delta": cfg.delta,
        "rows": rows,
        "delta_times_rows": cfg.delta * rows if isinstance(rows, int) else None,
        "rdp_order": cfg.order,
        "rdp": _figure(cost.rdp),
        "fingerprint": requests.recorded_fingerprint(request),
        "release_policy": cfg.release_policy,
        "user": {"id": user.id, "email": user.email, "ceiling_epsilon": budget.ceiling(session, user),
                 **user_side},
        "dataset": None,
        "datasets": [],
        "settings": None,
        "layers": None,
        "metrics": None,
    }
    per_person = True
    for dataset_id in payload.get("dataset_ids") or ([payload["dataset_id"]] if payload.get("dataset_id") else []):
        dataset = session.get(Dataset, dataset_id)
        per_person = per_person and dataset is not None and dataset.one_row_per_person
        cap = budget.dataset_cap(session, dataset_id)
        on_dataset = _spent_before(session, cfg, request, dataset_id=dataset_id)
        card["datasets"].append({
            "id": dataset_id, "name": dataset.name if dataset else None, "cap_epsilon": cap,
            "one_row_per_person": bool(dataset and dataset.one_row_per_person),
            "epsilon_before": on_dataset.epsilon, "epsilon_after": _figure(on_dataset.epsilon_with(cost)),
            "remaining_before": None if cap is None else on_dataset.remaining(cap),
            "remaining_after": None if cap is None else _remaining_after(on_dataset, cost, cap),
            "events": on_dataset.events,
        })
    if card["datasets"]:
        card["dataset"] = next((d for d in card["datasets"] if d["id"] == payload.get("dataset_id")),
                               card["datasets"][0])
    cumulative = user_side["epsilon_after"]
    card["reading"] = reading.plain_reading(math.inf if cumulative is None else cumulative, cfg.delta,
                                            one_row_per_person=per_person and bool(card["datasets"]))
    card["reading_epsilon"] = cumulative
    if request.target_type == "result" and request.target_id is not None:
        result = session.get(Result, request.target_id)
        job = session.get(Job, result.job_id) if result is not None else None
        if job is not None:
            card["settings"] = {"job_id": job.id, "kind": job.kind, "inputs": job.inputs, **(job.settings or {})}
            card["metrics"] = job.metrics or []
            card["officer_only"] = (result.lineage or {}).get("officer_only") if result is not None else None
            if job.spec:
                from grid_runtime.compute.spec import SpecError, layer_table

                try:
                    card["layers"] = layer_table(job.spec)
                except (SpecError, ValueError):
                    card["layers"] = None
    history = session.scalars(
        select(Request).where(Request.requester_id == user.id, Request.id != request.id)
        .order_by(Request.id.desc()).limit(HISTORY_LIMIT)
    )
    card["history"] = [
        {"id": r.id, "kind": r.kind, "state": r.state, "created_at": r.created_at.isoformat(),
         "epsilon": (r.payload or {}).get("epsilon"), "target_type": r.target_type, "target_id": r.target_id,
         "decision_note": r.decision_note}
        for r in history
    ]
    return card


def may_see_card(actor: Actor, request: Request) -> bool:
    return request.kind == RequestKind.release and requests.DECIDED_WITH[RequestKind.release] in actor.capabilities
