"""Worker routes. Listing needs ``view_statistics`` (officers, administrators, the Owner); Workers are added
and removed where they run (``gridctl workers add|remove`` for a local deployment), not through the API."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.node.deps import Actor, Requires
from grid_runtime.node.workers import service
from grid_runtime.node.workers.schemas import WorkersOut

router = APIRouter(tags=["workers"])


@router.get("/workers")
async def list_workers(request: Request, actor: Actor = Depends(Requires(Capability.view_statistics))
                       ) -> WorkersOut:
    """The Workers (Ray nodes) attached to this Node, with their resources and load."""
    state = request.app.state
    return await run_in_threadpool(service.list_workers, head=getattr(state, "ray_head", None),
                                   runner=getattr(state, "job_runner", None))
