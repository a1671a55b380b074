from __future__ import annotations

from fastapi import APIRouter, Request

from grid_runtime.node.deps import Database

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Liveness and database reachability (a ``SELECT 1`` each time). Public.

    It has a slot of its own: a monitor's probe never queues behind a crowd of requests."""
    database: Database = request.app.state.database
    await database.ping()
    return {"status": "ok"}
