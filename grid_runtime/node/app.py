"""The Node's FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from grid_runtime.admin.serving import AdminApp
from grid_runtime.core.database import create_database_engine, transaction, upgrade
from grid_runtime.core.handlers import install_error_handlers
from grid_runtime.core.limits import BodyLimits, flat_routes
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.web import allow_origins
from grid_runtime.node import bootstrap
from grid_runtime.node.api import api_router, document_errors
from grid_runtime.node.deps import Database, RetryReadAsWrite

log = logging.getLogger("grid_runtime.node")
API_PREFIX = "/api/v1"


def create_app(settings: NodeSettings | None = None) -> FastAPI:
    settings = settings or NodeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_database_engine(settings.resolved_database_url)
        upgrade(engine)
        database = Database(engine)
        app.state.engine = engine
        app.state.database = database
        app.state.sessions = database.sessions
        with transaction(app.state.sessions) as session:
            bootstrap.prepare(session, settings)
        resume_collector()
        try:
            yield
        finally:
            await database.drain()
            if database.probe is not None:
                await database.probe.close()
            engine.dispose()

    app = FastAPI(
        title="gridctl Node API",
        version="1",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json" if settings.api_docs else None,
        docs_url=f"{API_PREFIX}/docs" if settings.api_docs else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.include_router(api_router, prefix=API_PREFIX)
    app.mount("/admin", AdminApp(), name="admin")  # the Admin's static files, beside the API (admin/serving.py)
    _install_openapi(app)
    _install_error_handlers(app)
    app.add_middleware(RetryReadAsWrite)
    app.add_middleware(BodyLimits, settings=settings, routes=lambda: flat_routes(app))
    allow_origins(app, settings.cors_origins)
    return app


def resume_collector() -> None:
    """Once the Node has started: if its entry point paused the garbage collector for the start
    (``grid_runtime.node.__main__``), keep what the start made out of later collections and turn it back on."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _install_openapi(app: FastAPI) -> None:
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                 description="Every error answers `{code, message, details}`.")
            app.openapi_schema = document_errors(schema, API_PREFIX)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _install_error_handlers(app: FastAPI) -> None:
    install_error_handlers(app, service="Node", log=log)
