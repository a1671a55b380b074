"""Joins every router. Routes under ``protected`` need a token; each also declares its capability.

``PUBLIC_ROUTES`` is the explicit list of what needs no authentication; a test keeps it honest.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from grid_runtime.node import health
from grid_runtime.node.auth import router as auth
from grid_runtime.node.deps import current_actor

PUBLIC_ROUTES = {("GET", "/health"), ("POST", "/setup"), ("POST", "/auth/login")}

public = APIRouter()
public.include_router(health.router)
public.include_router(auth.public)

protected = APIRouter(dependencies=[Depends(current_actor)])
protected.include_router(auth.router)

api_router = APIRouter()
api_router.include_router(public)
api_router.include_router(protected)
