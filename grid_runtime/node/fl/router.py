"""Federated learning (docs/fl.md): hosting processes (``upload_data``) and the client protocol.

Client routes (``/fl/client/...``) take a client token of one process (``gflclient_...``), never a user's token:
``RequiresClient`` answers 401 without a valid one, and 403 to a user's token. Work that changes a cycle runs
under the process's lock, taken before a write slot (``released_session`` first), so the periodic settling, joins,
reports and stops of one process happen one at a time and never wait on each other in the opposite order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden, Unauthorized
from grid_runtime.core.schemas import Id
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.deps import DB, Actor, Database, Requires, current_actor, in_thread, released_session, settings
from grid_runtime.node.fl import aggregation, schemas, service
from grid_runtime.node.fl.models import FLClientToken
from grid_runtime.node.tensors.router import receive_body

SETTLE_INTERVAL_SECONDS = 1.0
"""How often the Node closes cycles whose time is up (joins and reports also settle their process first)."""
SHA256_HEADER = "X-Content-SHA256"
_bearer = HTTPBearer(auto_error=False)
log = logging.getLogger("grid_runtime.node.fl")


def store_of(app: Any) -> ObjectStore:
    """The Node's object store, opened once from its settings (the same one the tensors routes use)."""
    store: ObjectStore | None = getattr(app.state, "object_store", None)
    if store is None:
        node: NodeSettings = app.state.settings
        store = ObjectStore(node.resolved_object_store_url, node.object_store_options)
        app.state.object_store = store
    return store


def process_lock(app: Any, process_id: int) -> asyncio.Lock:
    locks: dict[int, asyncio.Lock] = app.state.fl_locks
    return locks.setdefault(process_id, asyncio.Lock())


async def settle_now(app: Any, process_id: int) -> None:
    """Settle one process (the caller holds the process's lock). A due cycle whose updates are stored is averaged
    first, outside any transaction, on a Worker when one is alive (else on the Node: ``aggregation.aggregate``);
    then the closing commits in a transaction of its own, and only then are the closed cycle's running sum and
    stored updates removed. An aggregation that fails on the Node too leaves the cycle open for the next round."""
    database: Database = app.state.database
    node: NodeSettings = app.state.settings
    store = store_of(app)
    job = await database.run(lambda s: service.pending_aggregation(
        s, process=service.get_process(s, process_id), store=store, settings=node), write=False)
    done = None
    if job is not None:
        try:
            done = await run_in_threadpool(lambda: aggregation.aggregate(
                job, store=store, settings=node, cluster=getattr(app.state, "ray_head", None) is not None))
        except Exception:  # noqa: BLE001 - the cycle stays open; the periodic settling tries again
            log.exception("could not aggregate cycle %s of FL process %s", job.cycle_id, process_id)
            await run_in_threadpool(store.delete, job.output_key)
            return
    try:
        closed = await database.run(lambda s: service.settle(
            s, process=service.get_process(s, process_id), store=store, settings=node, aggregated=done))
    except BaseException:
        if done is not None:
            await run_in_threadpool(store.delete, done.key)
        raise
    if done is not None and (closed is None or closed.checkpoint_key != done.key):
        await run_in_threadpool(store.delete, done.key)  # not recorded: nothing names it
    if closed is not None:
        await run_in_threadpool(service.discard_cycle, store, closed)


async def settle_due(app: Any) -> None:
    """Settle every process whose open cycle's time is up."""
    database: Database = app.state.database
    for process_id in await database.run(service.due_processes, write=False):
        async with process_lock(app, process_id):
            await settle_now(app, process_id)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The periodic settling of cycles whose time is up.

    At shutdown the loop is asked to stop, never cancelled: a cancellation landing while a round's query runs in a
    worker thread would close its session under that thread (and an error raised by that must not be taken for a
    failed round, looping on after shutdown). A round under way finishes first; the wait between rounds ends at
    once."""
    app.state.fl_locks = {}
    stopping = asyncio.Event()

    async def loop() -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), SETTLE_INTERVAL_SECONDS)
            if stopping.is_set():
                return
            try:
                await settle_due(app)
            except Exception:  # the next round tries again; a request settles its own process meanwhile
                log.warning("could not settle FL cycles", exc_info=True)

    task = asyncio.get_running_loop().create_task(loop())
    try:
        yield
    finally:
        stopping.set()
        await task


router = APIRouter(tags=["federated learning"], lifespan=lifespan)
UploadData = Requires(Capability.upload_data)


class RequiresClient(Requires):
    """A client token of an FL process (``gflclient_...``, unrevoked). Anything else: 401; a user's valid token:
    403 (client routes are for clients only)."""

    def __call__(self, request: Request, session: DB,  # type: ignore[override]
                 credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> FLClientToken:
        if credentials is not None and credentials.credentials.startswith(service.CLIENT_TOKEN_PREFIX + "_"):
            client = service.client_for_token(session, credentials.credentials)
            if client is None:
                raise Unauthorized("this client token is unknown or revoked")
            return client
        current_actor(request, session, credentials)  # 401 unless a valid user token
        raise Forbidden("this route takes an FL client token (gridctl fl tokens create), not a user's token",
                        details={"reason": "client_token_required"})


Client = Annotated[FLClientToken, Depends(RequiresClient())]


# ---- hosting (upload_data) ---------------------------------------------------------------------------------


@router.post("/fl/processes", status_code=status.HTTP_201_CREATED)
async def create_process(body: schemas.ProcessCreateIn, request: Request, session: DB,
                         actor: Actor = Depends(UploadData), node: NodeSettings = Depends(settings)
                         ) -> schemas.ProcessOut:
    """Host a process: the model spec (built with the Workers' builder; no user code runs), initial weights or
    fresh ones, the clients' training settings and the server's (cycles, reports, optional central DP, whose
    client-level ε is computed and shown)."""
    await run_in_threadpool(service.check_name_free, session, body.name)
    store = store_of(request.app)
    async with released_session(request):  # torch and the object store, outside any transaction
        prepared = await run_in_threadpool(service.prepare_model, body.spec, body.initial_weights)
        checkpoint = await run_in_threadpool(service.store_checkpoint, store, prepared.checkpoint)

    def create() -> schemas.ProcessOut:
        return service.process_out(service.create_process(session, actor=actor, body=body, prepared=prepared,
                                                          checkpoint=checkpoint, settings=node))

    try:
        return await in_thread(session, create)
    except BaseException:
        store.delete(checkpoint[0])
        raise


@router.get("/fl/processes")
def list_processes(session: DB, actor: Actor = Depends(UploadData)) -> list[schemas.ProcessOut]:
    """Every hosted process, with its state, cycles done and ε."""
    return [service.process_out(p) for p in service.list_processes(session)]


@router.get("/fl/processes/{ref}")
def show_process(ref: str, session: DB, actor: Actor = Depends(UploadData)) -> schemas.ProcessDetailOut:
    """A process and each cycle's figures: clients joined, reports, examples, mean reported loss, time."""
    return service.process_detail(session, service.get_process(session, ref))


@router.post("/fl/processes/{ref}/stop")
async def stop_process(ref: str, request: Request, session: DB, actor: Actor = Depends(UploadData),
                       node: NodeSettings = Depends(settings)) -> schemas.ProcessOut:
    """Stop a process you host: the open cycle is cancelled and clients are refused from now on."""
    process_id = (await run_in_threadpool(service.owned_process, session, ref, actor)).id
    database: Database = request.app.state.database
    async with released_session(request), process_lock(request.app, process_id):
        stopped, finished = await database.run(lambda s: _stopped(s, actor, process_id, node))
        if finished is not None:
            await run_in_threadpool(service.discard_cycle, store_of(request.app), finished)
        return stopped


def _stopped(session: Session, actor: Actor, process_id: int,
             node: NodeSettings) -> tuple[schemas.ProcessOut, service.ClosedCycle | None]:
    process, finished = service.stop_process(session, actor=actor, process=service.get_process(session, process_id),
                                             settings=node)
    return service.process_out(process), finished


@router.get("/fl/processes/{ref}/checkpoints")
def list_checkpoints(ref: str, session: DB, actor: Actor = Depends(UploadData)) -> list[schemas.CheckpointOut]:
    """The process's checkpoints: 0 is the initial parameters, n the parameters after cycle n's aggregation."""
    process = service.get_process(session, ref)
    return [schemas.CheckpointOut.model_validate(c) for c in service.list_checkpoints(session, process)]


def _stream(store: ObjectStore, key: str, sha256: str, size: int, filename: str) -> StreamingResponse:
    return StreamingResponse(store.iter_chunks(key), media_type="application/octet-stream",
                             headers={SHA256_HEADER: sha256, "Content-Length": str(size),
                                      "Content-Disposition": f'attachment; filename="{filename}"'})


_FILE: dict[int | str, dict[str, Any]] = {200: {"content": {"application/octet-stream": {}},
               "description": f"safetensors; its sha256 is in {SHA256_HEADER}"}}


@router.get("/fl/processes/{ref}/checkpoints/{number}", response_class=StreamingResponse, responses=_FILE)
def download_checkpoint(ref: str, number: Annotated[int, PathParam(ge=0, le=schemas.MAX_CYCLES)],
                        request: Request, session: DB, actor: Actor = Depends(UploadData)) -> StreamingResponse:
    """Download a checkpoint of a process you host, as safetensors."""
    process = service.owned_process(session, ref, actor)
    checkpoint = service.get_checkpoint(session, process, number)
    return _stream(store_of(request.app), checkpoint.object_key, checkpoint.sha256, checkpoint.size,
                   f"{process.id}-checkpoint-{checkpoint.number}.safetensors")


@router.post("/fl/processes/{ref}/tokens", status_code=status.HTTP_201_CREATED)
def issue_token(ref: str, body: schemas.ClientTokenIn, session: DB,
                actor: Actor = Depends(UploadData)) -> schemas.ClientTokenCreatedOut:
    """Issue a client token for a process you host (shown once; it works for this process only)."""
    process = service.owned_process(session, ref, actor)
    row, token = service.issue_client_token(session, actor=actor, process=process, name=body.name)
    return schemas.ClientTokenCreatedOut(**schemas.ClientTokenOut.model_validate(row).model_dump(), token=token)


@router.get("/fl/processes/{ref}/tokens")
def list_tokens(ref: str, session: DB, actor: Actor = Depends(UploadData)) -> list[schemas.ClientTokenOut]:
    """The client tokens of a process you host (never their secrets)."""
    process = service.owned_process(session, ref, actor)
    return [schemas.ClientTokenOut.model_validate(t) for t in service.list_client_tokens(session, process)]


@router.delete("/fl/processes/{ref}/tokens/{token_id}")
def revoke_token(ref: str, token_id: Id, session: DB, actor: Actor = Depends(UploadData)) -> schemas.ClientTokenOut:
    """Revoke a client token: it is refused from now on."""
    process = service.owned_process(session, ref, actor)
    return schemas.ClientTokenOut.model_validate(
        service.revoke_client_token(session, actor=actor, process=process, token_id=token_id))


# ---- clients (a client token) -------------------------------------------------------------------------------


@router.post("/fl/client/join")
async def join(request: Request, session: DB, client: Client) -> schemas.JoinOut:
    """Join the current cycle of your process (once per cycle): your status, the cycle's deadline and the plan
    (spec, training settings, the checkpoint to start from). Nothing about other clients."""
    process_id = client.process_id
    database: Database = request.app.state.database
    async with released_session(request), process_lock(request.app, process_id):
        await settle_now(request.app, process_id)  # committed on its own, whatever the join answers
        return await database.run(lambda s: service.join(
            s, client=s.get(FLClientToken, client.id), process=service.get_process(s, process_id)))  # type: ignore[arg-type]


@router.get("/fl/client/plan")
def client_plan(session: DB, client: Client) -> schemas.PlanOut:
    """Your process's plan (its name, the spec, the training settings, the current checkpoint's number and digest),
    without joining a cycle: what a client checks before it takes part."""
    return service.plan(session, service.get_process(session, client.process_id))


@router.get("/fl/client/checkpoint", response_class=StreamingResponse, responses=_FILE)
def client_checkpoint(request: Request, session: DB, client: Client) -> StreamingResponse:
    """The checkpoint the current cycle starts from, as safetensors (what ``join`` named)."""
    process = service.get_process(session, client.process_id)
    checkpoint = service.get_checkpoint(session, process)
    return _stream(store_of(request.app), checkpoint.object_key, checkpoint.sha256, checkpoint.size,
                   f"checkpoint-{checkpoint.number}.safetensors")


_RAW_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}},
    "description": "the update (trained parameters minus the checkpoint's) as safetensors, streamed"}}


@router.post("/fl/client/report", openapi_extra=_RAW_BODY)
async def report(
    request: Request, session: DB, client: Client,
    cycle: Annotated[int, Query(ge=1, le=schemas.MAX_CYCLES, description="the cycle you joined")],
    examples: Annotated[int, Query(ge=1, le=schemas.MAX_EXAMPLES, description="examples you trained on")],
    loss: Annotated[float | None, Query(description="your mean training loss (shown to the process's host)")] = None,
) -> schemas.ReportOut:
    """Report your update for the cycle you joined, once: the same names and shapes as the model's parameters,
    float32 or float64, finite and at most 1e4 in magnitude. A late, duplicate, wrong-shape or non-finite report
    is refused and changes nothing."""
    node: NodeSettings = request.app.state.settings
    service.finite_loss(loss)
    process = await run_in_threadpool(service.get_process, session, client.process_id)
    database: Database = request.app.state.database
    base = node.state_dir / "uploads"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    workdir = Path(tempfile.mkdtemp(dir=base))
    try:
        async with released_session(request):
            await receive_body(request, workdir / "update", service.update_limit(process))
            delta = await run_in_threadpool(
                lambda: service.check_update(process, (workdir / "update").read_bytes()))
            store = store_of(request.app)
            async with process_lock(request.app, process.id):
                cycle_row, mode = await database.run(lambda s: service.record_report(
                    s, client=s.get(FLClientToken, client.id), process=service.get_process(s, process.id),  # type: ignore[arg-type]
                    cycle_number=cycle, examples=examples, loss=loss, settings=node, store=store,
                    source=workdir / "update"))
                if mode == service.FOLD:
                    await run_in_threadpool(lambda: service.fold(node, process=process, cycle=cycle_row, delta=delta,
                                                                 examples=examples))
                await settle_now(request.app, process.id)
        return schemas.ReportOut(status="accepted", cycle=cycle)
    finally:
        await run_in_threadpool(shutil.rmtree, workdir, True)
