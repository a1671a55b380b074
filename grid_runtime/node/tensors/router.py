"""Tensor routes: streamed upload and download, metadata, tags, search.

Upload: ``POST /tensors`` takes the file as the raw request body (no multipart: it streams straight to disk)
and the metadata as query parameters: ``name`` (required), ``description``, ``tag`` (repeatable),
``visibility``, ``dataset`` and ``role`` (add the tensor to a dataset you own), and ``format`` or
``filename`` (its suffix names the format: .safetensors, .npy, .npz, .pt, .csv).

An upload never holds a database session while its body streams: authentication runs in a short transaction,
then (with no session) the body is written to a staging directory under ``state_dir/uploads`` (0700, files 0600),
converted, checked against the upload limit *as stored*, and put in the object store (itself through a
temporary object and a rename); only then does a short transaction add the row. A kill at any point leaves at
most a staging directory or a blob without its row, both removed at the next start (``bootstrap.recover``).
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import PayloadTooLarge
from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.schemas import MAX_ID, Id, Page
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.deps import DB, Actor, Requires, in_thread, released_session, settings
from grid_runtime.node.permissions.service import require_level
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.tensors import formats, service
from grid_runtime.node.tensors.schemas import Description, Name, Role, SortKey, Tag, TensorOut, TensorUpdateIn

router = APIRouter(tags=["tensors"], route_class=NameRoute)

SHA256_HEADER = "X-Content-SHA256"


def object_store(request: Request) -> ObjectStore:
    """The Node's object store, opened once from its settings."""
    store: ObjectStore | None = getattr(request.app.state, "object_store", None)
    if store is None:
        node: NodeSettings = request.app.state.settings
        store = ObjectStore(node.resolved_object_store_url, node.object_store_options)
        request.app.state.object_store = store
    return store


Store = Annotated[ObjectStore, Depends(object_store)]


UPLOADS_DIR = "uploads"
"""Under the state dir: one staging directory per upload in flight, all removed at start-up."""
def uploads_dir(node: NodeSettings) -> Path:
    return node.state_dir / UPLOADS_DIR


def upload_workdir(node: NodeSettings) -> Path:
    """A new staging directory for one upload (0700), under the state dir so that start-up can sweep it."""
    base = uploads_dir(node)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Path(tempfile.mkdtemp(dir=base))


async def receive_body(request: Request, dest: Path, max_bytes: int) -> int:
    """Stream the request body to ``dest`` (0600), refusing it (413) as soon as it passes ``max_bytes``.

    The pace rules (a pause limit, a minimum rate: 408) apply to every body, in ``core.limits``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the upload is {declared} bytes; this Node accepts at most {max_bytes}",
                              details={"max_upload_bytes": max_bytes})
    received = 0
    with formats.open_private(dest) as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(f"the upload passed this Node's limit of {max_bytes} bytes",
                                      details={"max_upload_bytes": max_bytes})
            out.write(chunk)
    return received


def put_staged(store: ObjectStore, staged: formats.StagedTensor) -> None:
    """Put a staged tensor in the object store under a new key (before any transaction; see the module)."""
    staged.stored = store.put_file(service.new_object_key(), staged.path)


def discard_staged(store: ObjectStore, staged: list[formats.StagedTensor]) -> None:
    for tensor in staged:
        if tensor.stored is not None:
            store.delete(tensor.stored.key)


def content_disposition(name: str, suffix: str = "") -> str:
    """``attachment`` with the name as given (RFC 6266/5987: ``filename*=UTF-8''...``) and an ASCII fallback."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name) or "download"
    return f"attachment; filename=\"{fallback}{suffix}\"; filename*=UTF-8''{quote(name + suffix, safe='')}"


def commit_or_discard(session: Session, store: ObjectStore, keys: list[str]) -> None:
    """Commit the new rows; if the commit fails, remove their blobs so nothing half-made remains."""
    try:
        session.commit()
    except BaseException:
        for key in keys:
            store.delete(key)
        raise


_RAW_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}, "description": "the file's bytes, streamed"}}


@router.post("/tensors", status_code=status.HTTP_201_CREATED, openapi_extra=_RAW_BODY)
async def upload_tensor(
    request: Request,
    session: DB,
    store: Store,
    name: Annotated[Name, Query(description="the tensor's name")],
    description: Annotated[Description, Query()] = "",
    tag: Annotated[list[Tag], Query(description="repeat for several tags")] = [],  # noqa: B006
    visibility: Visibility = Visibility.private,
    dataset: Annotated[str | None, Query(description="a dataset you own (id or name) to add it to")] = None,
    role: Annotated[Role | None, Query(description="its role in that dataset; the tensor's name if omitted")] = None,
    format: Annotated[str | None, Query(description="safetensors, npy, npz, pt or csv")] = None,
    filename: Annotated[str | None, Query(description="the file's name; its suffix tells the format")] = None,
    node: NodeSettings = Depends(settings),
    actor: Actor = Depends(Requires(Capability.upload_data)),
) -> TensorOut:
    """Upload one tensor (raw body, streamed): safetensors, .npy/.npz, .pt (weights only) or CSV.

    The file is checked, converted to a one-tensor safetensors file and stored with its sha256. Anything
    malformed or unsafe is refused with 422 naming the problem, and nothing is stored.
    """
    fmt = formats.resolve_format(format, filename)
    workdir = upload_workdir(node)
    staged: formats.StagedTensor | None = None
    try:
        async with released_session(request):  # no session or slot while the body streams and converts
            source = workdir / "upload"
            await receive_body(request, source, node.max_upload_bytes)
            staged = await run_in_threadpool(formats.stage, source, fmt, workdir, max_bytes=node.max_upload_bytes)
            await run_in_threadpool(put_staged, store, staged)
        ready = staged

        def store_and_commit() -> TensorOut:
            tensor = service.store_tensor(session, actor=actor, store=store, staged=ready, name=name,
                                          description=description, tags=tag, visibility=visibility,
                                          dataset=dataset, role=role)
            (out,) = service.to_out(session, [tensor], user_id=actor.id)
            commit_or_discard(session, store, [tensor.object_key])
            return out

        return await run_in_threadpool(store_and_commit)
    except BaseException:
        if staged is not None:
            await run_in_threadpool(discard_staged, store, [staged])
        raise
    finally:
        await run_in_threadpool(shutil.rmtree, workdir, True)


def _query(
    text: str | None, tag: list[str], tags_mode: str, dataset: str | None, visibility: Visibility | None,
    dtype: str | None, shape: str | None, uploader: Id | None, sort: str, limit: int, offset: int,
) -> service.TensorQuery:
    return service.TensorQuery(text=text, tags=tag, tags_mode=tags_mode, dataset=dataset, visibility=visibility,
                               dtype=dtype, shape=shape, uploader_id=uploader, sort=sort, limit=limit,
                               offset=offset)


def _search_page(session: Session, actor: Actor, query: service.TensorQuery) -> Page[TensorOut]:
    rows, total = service.search(session, query=query)
    return Page[TensorOut](items=service.to_out(session, rows, user_id=actor.id), total=total, limit=query.limit,
                           offset=query.offset)


@router.get("/tensors/search")
async def search_tensors(
    session: DB,
    q: Annotated[str | None, Query(max_length=200, description="words to find in names and descriptions")] = None,
    tag: Annotated[list[Tag], Query(description="repeat for several tags")] = [],  # noqa: B006
    tags_mode: Annotated[str, Query(pattern="^(all|any)$", description="all tags, or any of them")] = "all",
    dataset: Annotated[str | None, Query(description="only tensors in this dataset (id or name)")] = None,
    visibility: Visibility | None = None,
    dtype: str | None = None,
    shape: Annotated[str | None, Query(description="e.g. 60000,784; * for any one dimension")] = None,
    uploader: Id | None = None,
    sort: SortKey = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[TensorOut]:
    """Search tensor metadata; each hit carries the caller's effective level."""
    query = _query(q, tag, tags_mode, dataset, visibility, dtype, shape, uploader, sort, limit, offset)
    return await in_thread(session, partial(_search_page, session, actor, query))


@router.get("/tensors")
async def list_tensors(
    session: DB,
    tag: Annotated[list[Tag], Query(description="repeat for several tags")] = [],  # noqa: B006
    tags_mode: Annotated[str, Query(pattern="^(all|any)$")] = "all",
    dataset: str | None = None,
    visibility: Visibility | None = None,
    uploader: Id | None = None,
    sort: SortKey = "-created_at",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[TensorOut]:
    """List tensors (newest first by default), with the caller's effective level on each."""
    query = _query(None, tag, tags_mode, dataset, visibility, None, None, uploader, sort, limit, offset)
    return await in_thread(session, partial(_search_page, session, actor, query))


@router.get("/tensors/{tensor_id}")
def get_tensor(tensor_id: Id, session: DB, actor: Actor = Depends(Requires())) -> TensorOut:
    """A tensor's metadata and the caller's effective level on it."""
    (out,) = service.to_out(session, [service.get_tensor(session, tensor_id)], user_id=actor.id)
    return out


@router.patch("/tensors/{tensor_id}")
def update_tensor(tensor_id: Id, body: TensorUpdateIn, session: DB,
                  actor: Actor = Depends(Requires())) -> TensorOut:
    """Rename a tensor or change its description or visibility (its uploader, or manage_permissions)."""
    tensor = service.update_tensor(session, actor=actor, tensor_id=tensor_id, name=body.name,
                                   description=body.description, visibility=body.visibility)
    (out,) = service.to_out(session, [tensor], user_id=actor.id)
    return out


@router.put("/tensors/{tensor_id}/tags/{tag}")
def add_tag(tensor_id: Id, tag: Tag, session: DB, actor: Actor = Depends(Requires())) -> TensorOut:
    """Tag a tensor (idempotent)."""
    tensor = service.add_tag(session, actor=actor, tensor_id=tensor_id, tag=tag)
    (out,) = service.to_out(session, [tensor], user_id=actor.id)
    return out


@router.delete("/tensors/{tensor_id}/tags/{tag}")
def remove_tag(tensor_id: Id, tag: Tag, session: DB, actor: Actor = Depends(Requires())) -> TensorOut:
    """Remove a tag from a tensor."""
    tensor = service.remove_tag(session, actor=actor, tensor_id=tensor_id, tag=tag)
    (out,) = service.to_out(session, [tensor], user_id=actor.id)
    return out


@router.delete("/tensors/{tensor_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_tensor(tensor_id: Id, session: DB, store: Store, actor: Actor = Depends(Requires())) -> None:
    """Delete a tensor and its stored data (its uploader, or manage_permissions)."""
    key = service.delete_tensor(session, actor=actor, tensor_id=tensor_id)
    session.commit()
    store.delete(key)  # after the commit: a failed commit must not lose the data of a tensor that remains


@router.get("/tensors/{tensor_id}/data", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": f"the safetensors file; its sha256 is in {SHA256_HEADER}"}})
def download_tensor(tensor_id: Id, session: DB, store: Store,
                    actor: Actor = Depends(Requires())) -> StreamingResponse:
    """Download a tensor as safetensors, streamed (needs download level). Verify it against X-Content-SHA256."""
    tensor = service.get_tensor(session, tensor_id)
    require_level(session, actor=actor, target_type="tensor", target_id=tensor_id, needed=Level.download)
    service.record_download(session, actor=actor, tensor=tensor)
    return StreamingResponse(
        store.iter_chunks(tensor.object_key),
        media_type="application/octet-stream",
        headers={SHA256_HEADER: tensor.sha256, "Content-Length": str(tensor.size_bytes),
                 "Content-Disposition": content_disposition(tensor.name, ".safetensors")},
    )
