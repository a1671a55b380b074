"""A small documented fake of the cloud endpoints bootstrap.py talks to, where no emulator exists (GCP, Azure).

One loopback HTTP server plays, by path:

- GCP: the metadata server's token (``/computeMetadata/v1/instance/service-accounts/default/token``, which
  requires ``Metadata-Flavor: Google``), Cloud Storage's media download and upload
  (``/storage/v1/b/<bucket>/o/<key>?alt=media``, ``/upload/storage/v1/b/<bucket>/o?name=<key>``) and Secret
  Manager's ``access`` (``/v1/projects/<p>/secrets/<id>/versions/latest:access``);
- Azure: IMDS's managed-identity token (``/metadata/identity/oauth2/token``, which requires ``Metadata: true``),
  a blob container (``/blob/<container>/<key>``) and Key Vault's secrets (``/vault/secrets/<name>``).

Every data call must carry the bearer token the token endpoint handed out. ``refusals`` makes the first N data
calls answer 403, as Azure does while a new role assignment propagates. Each request is recorded.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "fake-machine-token"  # noqa: S105  (the fake's own)


@dataclass
class FakeCloud:
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> body
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value
    refusals: int = 0  # data calls answered 403 before the grant "propagates"
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> FakeCloud:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: Any) -> None:
                self._send(200, json.dumps(value).encode())

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401)
                    return False
                if cloud.refusals > 0:
                    cloud.refusals -= 1
                    self._send(403, b'{"error": "AuthorizationPermissionMismatch"}')
                    return False
                return True

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), parse_qs(parts.query)
                cloud.requests.append((method, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path.endswith("/service-accounts/default/token"):
                    if self.headers.get("Metadata-Flavor") != "Google":
                        return self._send(403)
                    return self._json({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
                if path == "/metadata/identity/oauth2/token":
                    if self.headers.get("Metadata") != "true":
                        return self._send(400)
                    return self._json({"access_token": TOKEN, "expires_in": "3600", "token_type": "Bearer"})
                if not self._authorized():
                    return None
                if path.startswith("/storage/v1/b/") and "/o/" in path and method == "GET":
                    key = path.split("/o/", 1)[1]
                    return self._send(200, cloud.objects[key], "application/octet-stream") \
                        if key in cloud.objects else self._send(404)
                if path.startswith("/upload/storage/v1/b/") and method == "POST":
                    cloud.objects[query["name"][0]] = body
                    return self._json({"name": query["name"][0]})
                if path.startswith("/v1/projects/") and path.endswith("/versions/latest:access"):
                    name = path.split("/secrets/", 1)[1].split("/", 1)[0]
                    data = base64.b64encode(cloud.secrets[name].encode()).decode()
                    return self._json({"payload": {"data": data}})
                if path.startswith("/blob/"):
                    key = path.split("/", 3)[3]  # /blob/<container>/<key>
                    if method == "PUT":
                        cloud.objects[key] = body
                        return self._send(201)
                    return self._send(200, cloud.objects[key], "application/octet-stream") \
                        if key in cloud.objects else self._send(404)
                if path.startswith("/vault/secrets/"):
                    return self._json({"value": cloud.secrets[path.rsplit("/", 1)[1]]})
                return self._send(404)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def environment(self, cloud: str) -> dict[str, str]:
        """What points a rendered bootstrap.py at this fake instead of the cloud."""
        if cloud == "gcp":
            return {"GRIDCTL_GCP_METADATA_URL": f"{self.url}/computeMetadata/v1",
                    "GRIDCTL_GCP_STORAGE_URL": self.url, "GRIDCTL_GCP_SECRETS_URL": self.url}
        return {"GRIDCTL_AZURE_IMDS_URL": f"{self.url}/metadata", "GRIDCTL_AZURE_BLOB_URL": f"{self.url}/blob",
                "GRIDCTL_AZURE_VAULT_URL": f"{self.url}/vault"}
