"""The Network's FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from grid_runtime.admin.serving import AdminApp
from grid_runtime.core.database import create_database_engine, transaction
from grid_runtime.core.handlers import install_error_handlers
from grid_runtime.core.limits import BodyLimits, flat_routes
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.web import allow_origins
from grid_runtime.network import accounts
from grid_runtime.network.database import upgrade_network
from grid_runtime.network.deps import Database, Requires, RequiresNode
from grid_runtime.network.router import PUBLIC_ROUTES, router

log = logging.getLogger("grid_runtime.network")
API_PREFIX = "/api/v1"


def declares_caller(dependant: Dependant) -> bool:
    """Whether a ``Requires`` or ``RequiresNode`` is anywhere in the route's dependencies."""
    return isinstance(dependant.call, Requires | RequiresNode) or any(declares_caller(d)
                                                                       for d in dependant.dependencies)


def check_declarations() -> None:
    """Every route is public by the explicit list or names who may call it; else the app is not built."""
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in (route.methods or set()) - {"HEAD"}:
            if (method, route.path) not in PUBLIC_ROUTES and not declares_caller(route.dependant):
                raise TypeError(f"{method} {route.path} needs a declaration: Depends(Requires(...)) or RequiresNode")


def create_app(settings: NetworkSettings | None = None) -> FastAPI:
    settings = settings or NetworkSettings()
    check_declarations()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_database_engine(settings.resolved_database_url)
        upgrade_network(engine)
        app.state.database = Database(engine)
        with transaction(app.state.database.sessions) as session:
            accounts.prepare(session, settings)
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(title="gridctl Network API", version="1", lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json" if settings.api_docs else None,
                  docs_url=f"{API_PREFIX}/docs" if settings.api_docs else None, redoc_url=None)
    app.state.settings = settings
    app.include_router(router, prefix=API_PREFIX)
    app.mount("/admin", AdminApp(), name="admin")  # the same Admin as a Node's (admin/serving.py): Network pages
    install_error_handlers(app, service="Network", log=log)
    app.add_middleware(BodyLimits, settings=settings, routes=lambda: flat_routes(app))
    allow_origins(app, settings.cors_origins)  # the same CORS as a Node's (core/web.py)
    return app
