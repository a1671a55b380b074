from __future__ import annotations

from fastapi import APIRouter, Request

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.deps import Database

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Liveness and database reachability (a ``SELECT 1`` each time). Public.

    It has a slot of its own: a monitor's probe never queues behind a crowd of requests."""
    database: Database = request.app.state.database
    await database.ping()
    return {"status": "ok"}


@router.get("/service")
async def service(request: Request) -> dict[str, str]:
    """Which service answers here, ``{"kind": "node", "name": ...}``: the Admin shows a Node's pages. Public."""
    node: NodeSettings = request.app.state.settings
    return {"kind": "node", "name": node.name}
