"""Joins every router. Routes under ``protected`` need a token; each also declares its capability.

``PUBLIC_ROUTES`` is the explicit list of what needs no authentication; a test keeps it honest.
The OpenAPI document lists, for every route, the error statuses it can answer and the real error body
``{code, message, details}`` (``document_errors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from grid_runtime.node import health
from grid_runtime.node.audit import router as audit
from grid_runtime.node.auth import router as auth
from grid_runtime.node.budget import router as budget
from grid_runtime.node.datasets import router as datasets
from grid_runtime.node.deps import Requires
from grid_runtime.node.fl import router as fl
from grid_runtime.node.groups import router as groups
from grid_runtime.node.jobs import router as jobs
from grid_runtime.node.network import router as network
from grid_runtime.node.permissions import router as permissions
from grid_runtime.node.requests import router as requests
from grid_runtime.node.roles import router as roles
from grid_runtime.node.tensors import router as tensors
from grid_runtime.node.users import router as users
from grid_runtime.node.workers import router as workers

DOCUMENTATION_ROUTES = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect")}
"""Public as well, served only while the ``api_docs`` setting is on (the default)."""

PUBLIC_ROUTES = {("GET", "/health"), ("GET", "/service"), ("POST", "/setup"),
                 ("POST", "/auth/login")} | DOCUMENTATION_ROUTES

api_router = APIRouter()


def add_routes(target: APIRouter, source: APIRouter, *, protected: bool) -> None:
    """Put ``source``'s routes in ``target`` as its own routes (``add_lifespans`` adds the routers' lifespans).

    What ``include_router`` does, without the nesting: FastAPI keeps an included router as a branch that it walks
    for every request, once to match and again to dispatch, at every level; routes put flat are matched once, in
    the same order, with the same OpenAPI operation. The route objects themselves are moved (``target`` is a plain
    router that would add nothing to them), so FastAPI does not analyse each endpoint again. ``protected``: every
    route must declare ``Depends(Requires(...))`` (authentication, and the capability it needs), or the app is not
    built."""
    for route in source.routes:
        if not isinstance(route, APIRoute) or not route.methods:
            raise TypeError(f"{route!r}: only API routes can be put flat")
        if protected and not declares_requires(route.dependant):
            raise TypeError(f"{sorted(route.methods)} {route.path} needs a token: declare Depends(Requires(...))")
        target.routes.append(route)  # the route as its router built it: FastAPI analyses it once here


def declares_requires(dependant: Dependant) -> bool:
    """Whether a ``Requires`` is anywhere in the route's dependencies (it authenticates, then checks)."""
    return isinstance(dependant.call, Requires) or any(declares_requires(d) for d in dependant.dependencies)


def add_lifespans(target: APIRouter, sources: Sequence[APIRouter]) -> None:
    """The sources' lifespans, run with ``target``'s: each included as a router without routes, after every route
    (so that no request walks them before its own route)."""
    default = type(APIRouter().lifespan_context)
    for source in sources:
        if source.on_startup or source.on_shutdown:
            raise TypeError(f"{source!r}: startup and shutdown handlers are not copied; use a lifespan")
        if not isinstance(source.lifespan_context, default):
            target.include_router(APIRouter(lifespan=source.lifespan_context))


add_routes(api_router, health.router, protected=False)
add_routes(api_router, auth.public, protected=False)
# Every domain's routes need a token: each declares ``Requires`` (checked as they are added), which authenticates
# and checks the capability the route names. The routes are copied, not included: FastAPI walks each included
# router for every request, so a flat list is the cheapest to match.
for _router in (auth.router, users.router, roles.router, groups.router, audit.router, permissions.router,
                requests.router, tensors.router, datasets.router, budget.router, jobs.router, workers.router,
                network.router, fl.router):
    add_routes(api_router, _router, protected=True)
add_lifespans(api_router, [health.router, auth.public, auth.router, users.router, roles.router, groups.router,
                           audit.router, permissions.router, requests.router, tensors.router, datasets.router,
                           budget.router, jobs.router, workers.router, network.router, fl.router])


# --- the documented contract -------------------------------------------------------------------------------

RATE_LIMITED_ROUTES = {("POST", "/auth/login"), ("POST", "/jobs"), ("POST", "/statistics")}
NEEDS_WORKERS_PREFIXES = ("/jobs", "/statistics", "/workers")
CALLS_A_NETWORK = {("POST", "/network/associations"), ("POST", "/network/associations/{association_id}/sync")}
"""Routes that call a Network (docs/network.md): 503 when it cannot be reached."""

_DESCRIPTIONS = {
    400: "Malformed JSON (`malformed_json`)",
    401: "No valid token (`unauthorized`): missing, unknown, expired or revoked, or the account is disabled",
    403: "Not allowed (`forbidden`): a capability or a rule of the domain; `details.missing` names capabilities",
    404: "Not found (`not_found`), or not visible to you",
    408: "The request body stalled or arrived too slowly (`request_timeout`)",
    409: "Conflicts with the current state (`conflict`, `already_exists`, `budget_exceeded`)",
    413: "The request body is too large (`payload_too_large`)",
    422: "Invalid input (`invalid_input`): `details` lists each field and its problem",
    429: "Too many attempts (`rate_limited`); see `Retry-After`",
    503: "A service the route needs is not running or cannot be reached (`unavailable`)",
}


def error_schema() -> dict[str, Any]:
    """The one error body every non-2xx answer has (``app.py``'s handlers)."""
    return {
        "title": "Error", "type": "object", "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable (see core/errors.py)"},
            "message": {"type": "string", "description": "for people"},
            "details": {"description": "structured context, or null"},
        },
    }


def documented_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses a route can answer, from what it is (public, has a body, has parameters...)."""
    statuses = {422}
    public = (method, path) in PUBLIC_ROUTES
    has_body = "requestBody" in operation
    if not public:
        statuses |= {401, 403}
    if has_body:
        statuses |= {408, 413}
        if "application/json" in operation["requestBody"].get("content", {}):
            statuses.add(400)
    if "{" in path or has_body or operation.get("parameters"):
        statuses.add(404)
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= {403, 409}
    if (method, path) in RATE_LIMITED_ROUTES:
        statuses.add(429)
    if path.startswith(NEEDS_WORKERS_PREFIXES) or (method, path) in CALLS_A_NETWORK:
        statuses.add(503)
    if (method, path) in {("GET", "/health"), ("GET", "/service")}:
        statuses = set()
    return statuses


def document_errors(schema: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Give every operation its error statuses with the real body, in place of FastAPI's ``{detail}`` 422."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = error_schema()
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses.pop("422", None)
            for status in sorted(documented_statuses(method.upper(), path.removeprefix(prefix), operation)):
                responses[str(status)] = {"description": _DESCRIPTIONS[status],
                                          "content": {"application/json": {"schema": ref}}}
    return schema
