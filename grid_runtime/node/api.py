"""Joins every router. Routes under ``protected`` need a token; each also declares its capability.

``PUBLIC_ROUTES`` is the explicit list of what needs no authentication; a test keeps it honest.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from grid_runtime.node import health
from grid_runtime.node.audit import router as audit
from grid_runtime.node.auth import router as auth
from grid_runtime.node.budget import router as budget
from grid_runtime.node.datasets import router as datasets
from grid_runtime.node.deps import current_actor
from grid_runtime.node.groups import router as groups
from grid_runtime.node.jobs import router as jobs
from grid_runtime.node.permissions import router as permissions
from grid_runtime.node.requests import router as requests
from grid_runtime.node.roles import router as roles
from grid_runtime.node.tensors import router as tensors
from grid_runtime.node.users import router as users
from grid_runtime.node.workers import router as workers

PUBLIC_ROUTES = {("GET", "/health"), ("POST", "/setup"), ("POST", "/auth/login")}

public = APIRouter()
public.include_router(health.router)
public.include_router(auth.public)

protected = APIRouter(dependencies=[Depends(current_actor)])
protected.include_router(auth.router)
protected.include_router(users.router)
protected.include_router(roles.router)
protected.include_router(groups.router)
protected.include_router(audit.router)
protected.include_router(permissions.router)
protected.include_router(requests.router)
protected.include_router(tensors.router)
protected.include_router(datasets.router)
protected.include_router(budget.router)
protected.include_router(jobs.router)
protected.include_router(workers.router)

api_router = APIRouter()
api_router.include_router(public)
api_router.include_router(protected)
