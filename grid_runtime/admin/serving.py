"""The Admin served at ``/admin/`` by the Node and by the Network (a Starlette mount beside the API, which stays at
``/api/v1``); shared here because neither service imports the other. The app asks ``GET /api/v1/service`` which of
the two it talks to.

- ``/admin/`` and ``/admin/index.html``: the app, never cached (it names the hashed assets of the current build);
- ``/admin/config.json``: ``{"node_url": ""}``: the app calls the API of the origin that served it;
- ``/admin/assets/...``: the hashed script and stylesheet, cached for a year as immutable;
- any other path without a file extension is a client route: answered with a redirect to the app at that route
  (``/admin/users`` to ``/admin/#/users``; the app routes on the URL's fragment, so the same bundle works on any
  static host without rewrite rules); a missing file is a 404.

Every answer carries a strict Content-Security-Policy: scripts, styles and API calls from this origin only, no
inline script or style element, no framing. An Admin hosted elsewhere (``gridctl admin export``) calls a Node's API
across origins: list its origin in the Node's ``cors_origins`` setting (``GRID_NODE_CORS_ORIGINS``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from grid_runtime.admin import CONFIG_NAME, AdminNotBuilt, bundle, config_json

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
    ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8", ".map": "application/json",
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": None}, status_code=status,
                        headers=SECURITY_HEADERS)


class AdminApp:
    """ASGI app mounted at ``/admin``; ``dist`` is the built bundle (the installed one when None)."""

    def __init__(self, dist: Path | None = None) -> None:
        self._dist = dist

    def _bundle(self) -> Path:
        return bundle() if self._dist is None else bundle(self._dist)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        if scope["type"] != "http":
            return _error(404, "not_found", "not found")
        if scope["method"] not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "the Admin's files are read with GET")
        path, root = str(scope["path"]), str(scope.get("root_path", ""))  # the mount's root_path ends in /admin
        relative = (path[len(root):] if path.startswith(root) else path).lstrip("/")
        try:
            dist = self._bundle()
        except AdminNotBuilt as exc:
            return _error(503, "unavailable", str(exc))
        if relative in ("", "index.html"):
            return self._file(dist / "index.html", NO_CACHE)
        if relative == CONFIG_NAME:
            return Response(config_json(""), media_type="application/json",
                            headers={**SECURITY_HEADERS, "Cache-Control": NO_CACHE})
        parts = PurePosixPath(relative).parts
        if any(part in ("..", ".") or "\\" in part or "\x00" in part for part in parts):
            return _error(404, "not_found", "not found")
        candidate = dist.joinpath(*parts)
        if candidate.is_file():
            cache = IMMUTABLE if parts[0] == "assets" and len(parts) > 1 else NO_CACHE
            return self._file(candidate, cache)
        if "." in parts[-1]:
            return _error(404, "not_found", f"the Admin has no file {relative}")
        # Relative, so that it holds behind a proxy that serves the Node under a prefix: /admin/users/5 goes to
        # ../#/users/5, i.e. /admin/#/users/5.
        up = "../" * (len(parts) - 1) or "./"
        return RedirectResponse(f"{up}#/{'/'.join(parts)}", status_code=302, headers=SECURITY_HEADERS)

    @staticmethod
    def _file(path: Path, cache: str) -> Response:
        media_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": cache})
