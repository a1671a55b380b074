"""Dataset routes. Creating needs ``upload_data``; changing needs ownership or ``manage_permissions``."""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.levels import Visibility
from grid_runtime.core.schemas import MAX_ID, Description, Page
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.datasets import flows, service
from grid_runtime.node.datasets.schemas import (
    ColumnBounds,
    DatasetCreateIn,
    DatasetName,
    DatasetOut,
    DatasetUpdateIn,
    MemberIn,
)
from grid_runtime.node.deps import DB, Actor, Requires, released_session, settings
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.tensors import formats
from grid_runtime.node.tensors.router import (
    Store,
    commit_or_discard,
    discard_staged,
    put_staged,
    receive_body,
    upload_workdir,
)
from grid_runtime.node.tensors.schemas import Role, Tag

router = APIRouter(tags=["datasets"], route_class=NameRoute)

_RAW_CSV = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}},
                            "description": "the CSV, header row first, streamed"}}


@router.post("/datasets", status_code=status.HTTP_201_CREATED)
def create_dataset(body: DatasetCreateIn, session: DB,
                   actor: Actor = Depends(Requires(Capability.upload_data))) -> DatasetOut:
    """Create a dataset from tensors you uploaded (role -> tensor id), with optional declared bounds."""
    dataset = service.create_dataset(session, actor=actor, name=body.name, description=body.description,
                                     tags=body.tags, visibility=body.visibility, members=body.members,
                                     bounds=body.bounds, label_classes=body.label_classes,
                                     one_row_per_person=body.one_row_per_person)
    return service.to_out(session, dataset, user_id=actor.id)


@router.post("/datasets/from-csv", status_code=status.HTTP_201_CREATED, openapi_extra=_RAW_CSV)
async def create_dataset_from_csv(
    request: Request,
    session: DB,
    store: Store,
    name: Annotated[DatasetName, Query(description="the dataset's name")],
    label: Annotated[str, Query(min_length=1, description="the CSV column holding the labels")],
    description: Annotated[Description, Query()] = "",
    tag: Annotated[list[Tag], Query(description="repeat for several tags")] = [],  # noqa: B006
    visibility: Visibility = Visibility.private,
    node: NodeSettings = Depends(settings),
    actor: Actor = Depends(Requires(Capability.upload_data)),
) -> DatasetOut:
    """Create a dataset from one CSV (raw body): ``features`` (float32, the other columns) and ``labels``.

    Labels are int64 when every value is a whole number, float32 otherwise. Column names are kept on the
    tensors. Every value must be numeric; bounds are declared afterwards (PUT /datasets/{ref}/bounds).
    """
    workdir = upload_workdir(node)
    staged: list[formats.StagedTensor] = []
    try:
        async with released_session(request):  # no session while the body streams (tensors.router)
            source = workdir / "upload.csv"
            await receive_body(request, source, node.max_upload_bytes)
            features, labels = await run_in_threadpool(formats.stage_csv_dataset, source, workdir, label=label,
                                                       max_bytes=node.max_upload_bytes)
            for tensor in (features, labels):
                staged.append(tensor)
                await run_in_threadpool(put_staged, store, tensor)

        def store_and_commit() -> DatasetOut:
            dataset, keys = flows.create_from_staged(
                session, actor=actor, store=store, name=name, staged={"features": features, "labels": labels},
                description=description, tags=tag, visibility=visibility)
            out = service.to_out(session, dataset, user_id=actor.id)
            commit_or_discard(session, store, keys)
            return out

        return await run_in_threadpool(store_and_commit)
    except BaseException:
        await run_in_threadpool(discard_staged, store, staged)
        raise
    finally:
        await run_in_threadpool(shutil.rmtree, workdir, True)


@router.get("/datasets")
def list_datasets(
    session: DB,
    q: Annotated[str | None, Query(max_length=200, description="substring of the name or description")] = None,
    tag: Tag | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    actor: Actor = Depends(Requires()),
) -> Page[DatasetOut]:
    """List datasets by name, with their members and the caller's effective level on each."""
    rows, total = service.list_datasets(session, q=q, tag=tag, limit=limit, offset=offset)
    return Page[DatasetOut](items=[service.to_out(session, d, user_id=actor.id) for d in rows], total=total,
                            limit=limit, offset=offset)


@router.get("/datasets/{ref}")
def get_dataset(ref: str, session: DB, actor: Actor = Depends(Requires())) -> DatasetOut:
    """A dataset by id or name: members, declared bounds and the caller's effective level."""
    return service.to_out(session, service.get_dataset(session, ref), user_id=actor.id)


@router.patch("/datasets/{ref}")
def update_dataset(ref: str, body: DatasetUpdateIn, session: DB,
                   actor: Actor = Depends(Requires())) -> DatasetOut:
    """Rename a dataset or change its description, tags, visibility or declared metadata (label classes, one
    row per person) (its owner, or manage_permissions)."""
    dataset = service.update_dataset(session, actor=actor, ref=ref, name=body.name, description=body.description,
                                     tags=body.tags, visibility=body.visibility, label_classes=body.label_classes,
                                     clear_label_classes=body.clear_label_classes,
                                     one_row_per_person=body.one_row_per_person)
    return service.to_out(session, dataset, user_id=actor.id)


@router.put("/datasets/{ref}/members/{role}")
def set_member(ref: str, role: Role, body: MemberIn, session: DB,
               actor: Actor = Depends(Requires())) -> DatasetOut:
    """Put a tensor you uploaded in the dataset under ``role`` (replacing what held it, and its bounds)."""
    dataset = service.set_member_by_id(session, actor=actor, ref=ref, role=role, tensor_id=body.tensor_id)
    return service.to_out(session, dataset, user_id=actor.id)


@router.delete("/datasets/{ref}/members/{role}")
def remove_member(ref: str, role: Role, session: DB, actor: Actor = Depends(Requires())) -> DatasetOut:
    """Take a member out of the dataset (the tensor stays)."""
    dataset = service.remove_member(session, actor=actor, ref=ref, role=role)
    return service.to_out(session, dataset, user_id=actor.id)


@router.put("/datasets/{ref}/bounds")
def set_bounds(ref: str, body: dict[Role, ColumnBounds], session: DB,
               actor: Actor = Depends(Requires())) -> DatasetOut:
    """Declare per-column bounds, role -> {lower, upper} (replaces all). Never derived from the data."""
    dataset = service.set_bounds(session, actor=actor, ref=ref, bounds=body)
    return service.to_out(session, dataset, user_id=actor.id)


@router.delete("/datasets/{ref}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(ref: str, session: DB, actor: Actor = Depends(Requires())) -> None:
    """Delete a dataset (its tensors stay)."""
    service.delete_dataset(session, actor=actor, ref=ref)
