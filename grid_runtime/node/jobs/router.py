"""Job, result and job-quota routes; the router's lifespan starts the Ray head and the job runner.

Any authenticated user may submit jobs on data they may compute on (the domain guide); the service checks
``compute`` on every input. Officers (``triage_requests``) see every job, its metrics and every result.
Quotas are set by administrators (``manage_users``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from grid_runtime.compute.contracts import LOSSES, OPTIMIZERS, STATISTICS
from grid_runtime.core.capabilities import Capability
from grid_runtime.core.schemas import MAX_ID, Id, Page
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node import flows
from grid_runtime.node.deps import DB, Actor, Requires, settings
from grid_runtime.node.jobs import service
from grid_runtime.node.jobs.models import JOB_STATES
from grid_runtime.node.jobs.schemas import (
    JobOfficerOut,
    JobOptionsOut,
    JobOut,
    QuotaIn,
    QuotaOut,
    ResultDetailOut,
    ResultOut,
    StatisticsIn,
    TrainIn,
)
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.tensors.router import Store

log = logging.getLogger("grid_runtime.node.jobs")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """With Ray enabled: start the head (no compute), or use the one at ``ray_address``; connect as its
    driver, start the job runner; stop them in reverse on shutdown. Runs inside the app's own lifespan,
    after migrations."""
    node: NodeSettings = app.state.settings
    app.state.ray_head = None
    app.state.job_runner = None
    if not node.ray_enabled:
        yield
        return
    from grid_runtime.compute.cluster import ExistingHead, HeadConfig, RayHead, ensure_token
    from grid_runtime.node.jobs.runner import JobRunner

    head: RayHead | ExistingHead
    if node.ray_address:
        head = ExistingHead(node.ray_address, node.ray_token_file or ensure_token(node.state_dir),
                            start_timeout=node.ray_start_timeout_seconds)
    else:
        head = RayHead(HeadConfig(host=node.ray_host, port=node.ray_port,
                                  client_server_port=node.ray_client_server_port,
                                  node_manager_port=node.ray_node_manager_port,
                                  object_manager_port=node.ray_object_manager_port,
                                  dashboard_port=node.ray_dashboard_port,
                                  object_store_bytes=node.ray_object_store_bytes,
                                  start_timeout=node.ray_start_timeout_seconds), state_dir=node.state_dir)
    head.start()  # on the event loop's thread, which lives as long as the Node (a head it starts dies with it)
    log.info("Ray head at %s", head.address)
    runner = JobRunner(app.state.sessions, node)
    try:
        runner.start()
        app.state.ray_head, app.state.job_runner = head, runner
        yield
    finally:
        await run_in_threadpool(runner.stop)
        await run_in_threadpool(head.stop)


router = APIRouter(tags=["jobs"], lifespan=lifespan, route_class=NameRoute)


def _wake(request: Request) -> None:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()


@router.post("/jobs/train", status_code=status.HTTP_201_CREATED)
def submit_training(body: TrainIn, request: Request, session: DB, store: Store,
                    node: NodeSettings = Depends(settings),
                    actor: Actor = Depends(Requires())) -> JobOfficerOut | JobOut:
    """Submit a training job: a model spec trained on a dataset you may compute on, with or without DP.

    Refused before anything runs when the spec is malformed or uses a layer outside the allowlist (422),
    when you lack ``compute`` on an input (403), when a quota is reached (429), or when the job's privacy
    cost does not fit your privacy budget or a cap of a dataset holding an input (409 budget_exceeded): the
    cost is charged here, when the job is admitted, and a release later spends nothing more."""
    job = flows.submit_training(session, actor=actor, settings=node, body=body, store=store)
    out = service.job_out(session, job, actor=actor)
    try:
        session.commit()
    except BaseException:
        service.discard_initial_weights(store, job)  # no job row: no weights object either
        raise
    _wake(request)
    return out


@router.post("/jobs/statistics", status_code=status.HTTP_201_CREATED)
def submit_statistics(body: StatisticsIn, request: Request, session: DB, node: NodeSettings = Depends(settings),
                      actor: Actor = Depends(Requires())) -> JobOfficerOut | JobOut:
    """Submit a DP statistic (count, sum, mean, histogram, quantiles) of a dataset member, within its
    declared bounds; refused like training jobs."""
    job = flows.submit_statistics(session, actor=actor, settings=node, body=body)
    out = service.job_out(session, job, actor=actor)
    session.commit()
    _wake(request)
    return out


@router.get("/jobs/options")
def job_options(session: DB, node: NodeSettings = Depends(settings), actor: Actor = Depends(Requires())
                ) -> JobOptionsOut:
    """What a client needs to plan a job: the Node's δ and RDP order, accepted choices and your quotas."""
    return JobOptionsOut(delta=node.delta, rdp_order=node.rdp_order,
                         losses=list(LOSSES), optimizers=list(OPTIMIZERS), statistics=list(STATISTICS),
                         workers_enabled=node.ray_enabled,
                         quota=service.quota_of(session, settings=node, user_id=actor.id))


@router.get("/jobs")
def list_jobs(
    session: DB,
    all_users: Annotated[bool, Query(alias="all", description="every user's jobs (officers only)")] = False,
    state: Annotated[str | None, Query(pattern="^(" + "|".join(JOB_STATES) + ")$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[JobOfficerOut | JobOut]:
    """Your jobs, newest first (officers: everyone's with all=true)."""
    jobs, total = service.list_jobs(session, actor=actor, everyone=all_users, state=state, limit=limit,
                                    offset=offset)
    return Page(items=[service.job_out(session, j, actor=actor) for j in jobs], total=total, limit=limit,
                offset=offset)


@router.get("/jobs/{job_id}")
def read_job(job_id: Id, session: DB, actor: Actor = Depends(Requires())) -> JobOfficerOut | JobOut:
    """One job: state, progress, spec as a layer table, settings, planned cost (metrics for officers)."""
    return service.job_out(session, service.read_job(session, actor=actor, job_id=job_id), actor=actor)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: Id, request: Request, session: DB,
               actor: Actor = Depends(Requires())) -> JobOfficerOut | JobOut:
    """Cancel a queued or running job (yours, or any as an officer)."""
    job = service.cancel_job(session, actor=actor, job_id=job_id)
    out = service.job_out(session, job, actor=actor)
    session.commit()
    _wake(request)
    return out


@router.get("/results/{result_id}")
def read_result(result_id: Id, session: DB, node: NodeSettings = Depends(settings),
                actor: Actor = Depends(Requires())) -> ResultDetailOut | ResultOut:
    """A result: kind, public lineage, privacy event, ε and δ, and whether you may download it. Its sha256 and
    size only once you may download it; officers also see the full lineage and the HMAC fingerprint."""
    return flows.result_out(session, actor=actor, result_id=result_id, settings=node)


@router.get("/results/{result_id}/data", response_model=None)
def download_result(result_id: Id, session: DB, store: Store, node: NodeSettings = Depends(settings),
                    actor: Actor = Depends(Requires())) -> StreamingResponse | JSONResponse:
    """The result's artifact (safetensors, or a statistic's JSON value) when you may download it: you could
    download every input, or your release request for it was approved."""
    result = flows.download_result(session, actor=actor, result_id=result_id, settings=node)
    session.commit()
    if result.object_key is None:
        return JSONResponse(result.value, headers={"X-Content-SHA256": result.sha256})
    return StreamingResponse(store.iter_chunks(result.object_key), media_type="application/octet-stream",
                             headers={"X-Content-SHA256": result.sha256,
                                      "Content-Disposition": f'attachment; filename="result-{result.id}.safetensors"'})


@router.get("/quotas/{user_ref}")
def read_quota(user_ref: str, session: DB, node: NodeSettings = Depends(settings),
               actor: Actor = Depends(Requires())) -> QuotaOut:
    """A user's job quotas and use (your own; anyone's with manage_users)."""
    from grid_runtime.core.errors import Forbidden
    from grid_runtime.node.permissions.service import resolve_user

    if not actor.is_named_by(user_ref) and not actor.can(Capability.manage_users):
        # Before the lookup: "no such user" and "not yours" get the same answer (issue 11).
        raise Forbidden("reading another user's quotas needs the capability manage_users")
    user = resolve_user(session, user_ref)
    return service.quota_of(session, settings=node, user_id=user.id)


@router.put("/quotas/{user_ref}")
def set_quota(user_ref: str, body: QuotaIn, session: DB, node: NodeSettings = Depends(settings),
              actor: Actor = Depends(Requires(Capability.manage_users))) -> QuotaOut:
    """Set a user's job quotas (concurrent jobs, jobs a day, run-time limit); null resets to the default."""
    return service.set_quota(session, actor=actor, settings=node, user_ref=user_ref, body=body)
