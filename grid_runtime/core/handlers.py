"""The one error body of every service (``{code, message, details}``), installed on a FastAPI app.

The Node and the Network answer every error alike: a ``GridError`` with its code and status, FastAPI's own
validation errors as 422 ``invalid_input`` (400 ``malformed_json`` for a body that is not JSON), Starlette's HTTP
errors by status, and anything unexpected as 500 ``internal`` with the detail in the server's log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from grid_runtime.core.errors import GridError

HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              408: "request_timeout", 413: "payload_too_large"}


def error_response(status: int, code: str, message: str, details: object = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message, "details": details})


def install_error_handlers(app: FastAPI, *, service: str, log: logging.Logger) -> None:
    """``service`` names the server in the 500 answer ("the Node's log has the details")."""

    @app.exception_handler(GridError)
    async def grid_error(_: Request, exc: GridError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        if exc.status == 429 and isinstance(exc.details, dict) and "retry_after" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or e["loc"][0], "problem": e["msg"],
             "type": e["type"]}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON", errors)
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors)
        return error_response(422, "invalid_input", f"invalid request: {summary}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", f"internal server error; the {service}'s log has the details")
