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

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(auth.public)
# Each domain's router is included once, with authentication as a router-level dependency (a flat tree:
# FastAPI matches every request against it, so each level of nesting costs every request).
for _router in (auth.router, users.router, roles.router, groups.router, audit.router, permissions.router,
                requests.router, tensors.router, datasets.router, budget.router, jobs.router, workers.router):
    api_router.include_router(_router, dependencies=[Depends(current_actor)])
