from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from grid_runtime.node.deps import DB

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: DB) -> dict[str, str]:
    """Liveness and database reachability. Public."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
