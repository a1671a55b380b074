"""Small documented fakes of the cloud endpoints a machine talks to where no emulator exists, and the GCS
emulator as the rehearsal runs it (providers/rehearsal.py, tests/rehearsal/).

:class:`FakeCloud` is one HTTP server that plays, by path:

- GCP's metadata server (no emulator exists): the ping on ``/`` that ``google-auth`` sends to find out it runs on
  Compute Engine, and under ``/computeMetadata/v1/`` the project (``project/project-id``,
  ``project/numeric-project-id``), the universe domain, the instance's service account
  (``instance/service-accounts/<account>/`` with ``recursive=true``, ``.../email``) and its access token
  (``instance/service-accounts/<account>/token``). Every request must carry ``Metadata-Flavor: Google`` and
  every answer does, as the real one's;
- Secret Manager (no emulator exists): ``secrets.create`` (``POST /v1/projects/<p>/secrets?secretId=<id>``),
  ``secrets.addVersion`` (``POST /v1/projects/<p>/secrets/<id>:addVersion``) and ``versions.access``
  (``GET /v1/projects/<p>/secrets/<id>/versions/latest:access``);
- Cloud Storage's media download and upload (``/storage/v1/b/<bucket>/o/<key>?alt=media``,
  ``/upload/storage/v1/b/<bucket>/o?name=<key>``), for tests of the bootstrap alone: a rehearsal uses the GCS
  emulator below instead;
- Azure: IMDS's managed-identity token (``/metadata/identity/oauth2/token``, which requires ``Metadata: true``),
  a blob container (``/blob/<container>/<key>``) and Key Vault's secrets (``GET``/``PUT /vault/secrets/<name>``).

Every data call must carry the bearer token the token endpoints hand out (:data:`TOKEN`, one for every machine:
the fake does not enforce who may read what, as IAM would). ``refusals`` makes the first N data calls answer
403, as Azure does while a new role assignment propagates. Each request is recorded (and printed, with the
client's address, when run as a program).

The GCS emulator is PyPI's ``gcp-storage-emulator`` (the test extra), run by :func:`serve_gcs_emulator` with one
route added: ``objects.move`` (``POST .../o/<key>/moveTo/o/<new key>``), which gcsfs tries first for every rename
(the Node writes each blob under a temporary key, then renames it) and the emulator does not implement; without it
gcsfs retries the emulator's 501 for half a minute before it copies and deletes. The route copies and deletes.

    python -m providers.cloud_fakes fake --host 0.0.0.0 --port 80 --project P
    python -m providers.cloud_fakes gcs --host 0.0.0.0 --port 9023
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "fake-machine-token"  # noqa: S105  (the fake's own)
SERVICE_ACCOUNT = "gridctl-rehearsal@{project}.iam.gserviceaccount.com"
GCS_EMULATOR_PORT = 9023
TENANT = "00000000-0000-4000-8000-00000000feed"  # the fake's Entra ID tenant


def azure_token(resource: str, lifetime: int = 3600) -> str:
    """An access token for ``resource`` shaped as Entra ID's (a JWT: header, claims, signature), which is what IMDS
    hands a managed identity. It is not signed: Azurite's OAuth "basic" level checks a token's issuer, audience
    and lifetime, never its signature, and the rest of the fake only compares it with the tokens it handed out."""
    now = int(time.time())

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"aud": resource.rstrip("/"), "iss": f"https://sts.windows.net/{TENANT}/", "iat": now - 60,
              "nbf": now - 60, "exp": now + lifetime, "tid": TENANT, "sub": "gridctl-rehearsal-identity",
              "oid": "00000000-0000-4000-8000-0000000000aa", "jti": secrets.token_hex(8)}
    return f"{part({'typ': 'JWT', 'alg': 'RS256', 'kid': 'gridctl-rehearsal'})}.{part(claims)}.bm90LXNpZ25lZA"


def make_tls(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway certificate authority and a server certificate for the DNS ``names`` it signs (PEM files in
    ``directory``): returns the CA's certificate, the server's certificate and the server's key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gridctl rehearsal CA (throwaway)")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


@dataclass
class FakeCloud:
    host: str = "127.0.0.1"
    port: int = 0
    project: str = "gridctl-rehearsal"
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> body
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value (the latest version)
    refusals: int = 0  # data calls answered 403 before the grant "propagates"
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    issued: set[str] = field(default_factory=set)  # the Azure tokens IMDS handed out
    log: bool = False  # print "<client address> <method> <path>" for each request (a rehearsal's cloud.log)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: Any, status: int = 200) -> None:
                self._send(status, json.dumps(value).encode())

            def _authorized(self) -> bool:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if token != TOKEN and token not in cloud.issued:
                    self._send(401)
                    return False
                if cloud.refusals > 0:
                    cloud.refusals -= 1
                    self._send(403, b'{"error": "AuthorizationPermissionMismatch"}')
                    return False
                return True

            def _metadata(self, method: str, path: str, query: dict[str, list[str]]) -> None:
                """GCP's metadata server: ``path`` is what follows ``/computeMetadata/v1/``."""
                google = {"Metadata-Flavor": "Google"}
                if self.headers.get("Metadata-Flavor") != "Google" or method != "GET":
                    return self._send(403, b"Missing Metadata-Flavor:Google header", "text/plain", google)
                account = SERVICE_ACCOUNT.format(project=cloud.project)
                text = {"project/project-id": cloud.project, "project/numeric-project-id": "1234",
                        "universe/universe-domain": "googleapis.com"}.get(path)
                if text is not None:
                    return self._send(200, text.encode(), "application/text", google)
                if path.startswith("instance/service-accounts/"):
                    parts = path.split("/")  # instance, service-accounts, <account>, [what]
                    if len(parts) >= 3 and parts[2] in ("default", account):
                        what = parts[3] if len(parts) > 3 else ""
                        if what == "token":
                            body = {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
                            return self._send(200, json.dumps(body).encode(), "application/json", google)
                        if what == "email":
                            return self._send(200, account.encode(), "application/text", google)
                        if what == "" and query.get("recursive") == ["true"]:
                            body = {"email": account, "aliases": ["default"],
                                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
                            return self._send(200, json.dumps(body).encode(), "application/json", google)
                return self._send(404, b"Not Found", "text/plain", google)

            def _secret_manager(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
                """``path`` is what follows ``/v1/projects/<project>/secrets``."""
                if method == "POST" and path == "" and query.get("secretId"):
                    name = query["secretId"][0]
                    if name in cloud.secrets:
                        return self._json({"error": {"code": 409, "status": "ALREADY_EXISTS"}}, 409)
                    cloud.secrets[name] = ""
                    return self._json({"name": f"projects/{cloud.project}/secrets/{name}"})
                if method == "POST" and path.endswith(":addVersion"):
                    name = path[1:].removesuffix(":addVersion")
                    if name not in cloud.secrets:
                        return self._json({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)
                    cloud.secrets[name] = base64.b64decode(json.loads(body)["payload"]["data"]).decode()
                    return self._json({"name": f"projects/{cloud.project}/secrets/{name}/versions/1"})
                if method == "GET" and path.endswith("/versions/latest:access"):
                    name = path[1:].split("/", 1)[0]
                    if not cloud.secrets.get(name):  # no secret, or no version yet
                        return self._json({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)
                    data = base64.b64encode(cloud.secrets[name].encode()).decode()
                    return self._json({"name": f"projects/{cloud.project}/secrets/{name}/versions/1",
                                       "payload": {"data": data}})
                return self._send(404)

            def _handle(self, method: str) -> None:
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), parse_qs(parts.query)
                cloud.requests.append((method, self.path))
                if cloud.log:
                    print(f"{self.client_address[0]} {method} {self.path}", flush=True)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path == "/":  # google-auth's ping: "is this Compute Engine?"
                    return self._send(200, b"ok", "text/plain", {"Metadata-Flavor": "Google"})
                if path.startswith("/computeMetadata/v1/"):
                    return self._metadata(method, path.removeprefix("/computeMetadata/v1/"), query)
                if path == "/metadata/identity/oauth2/token":
                    if self.headers.get("Metadata") != "true":
                        return self._json({"error": "invalid_request", "error_description": "Required metadata "
                                                    "header not specified"}, 400)
                    resource = (query.get("resource") or ["https://management.azure.com/"])[0]
                    token = azure_token(resource)
                    cloud.issued.add(token)
                    return self._json({"access_token": token, "expires_in": "3600", "resource": resource,
                                       "expires_on": str(int(time.time()) + 3600), "token_type": "Bearer"})
                if not self._authorized():
                    return None
                if path.startswith("/storage/v1/b/") and "/o/" in path and method == "GET":
                    key = path.split("/o/", 1)[1]
                    return self._send(200, cloud.objects[key], "application/octet-stream") \
                        if key in cloud.objects else self._send(404)
                if path.startswith("/upload/storage/v1/b/") and method == "POST":
                    cloud.objects[query["name"][0]] = body
                    return self._json({"name": query["name"][0]})
                segments = path.split("/", 4)  # "", v1, projects, <project>, secrets...
                if path.startswith("/v1/projects/") and len(segments) == 5 and segments[4].startswith("secrets"):
                    return self._secret_manager(method, segments[4].removeprefix("secrets"), query, body)
                if path.startswith("/blob/"):
                    key = path.split("/", 3)[3]  # /blob/<container>/<key>
                    if method == "PUT":
                        cloud.objects[key] = body
                        return self._send(201)
                    return self._send(200, cloud.objects[key], "application/octet-stream") \
                        if key in cloud.objects else self._send(404)
                if path.startswith("/vault/secrets/"):
                    name = path.rsplit("/", 1)[1]
                    if method == "PUT":
                        cloud.secrets[name] = json.loads(body)["value"]
                        return self._json({"id": f"{path}/1", "value": cloud.secrets[name]})
                    return self._json({"value": cloud.secrets[name]}) if name in cloud.secrets \
                        else self._json({"error": {"code": "SecretNotFound"}}, 404)
                return self._send(404)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def start(self) -> FakeCloud:
        """Serve in a background thread (tests); :meth:`serve` serves in the calling one."""
        self.server = ThreadingHTTPServer((self.host, self.port), self.handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def serve(self) -> None:
        self.server = ThreadingHTTPServer((self.host, self.port), self.handler())
        print(f"fake cloud endpoints on {self.host}:{self.server.server_port}", flush=True)
        self.server.serve_forever()

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


def add_object_move() -> None:
    """Teach gcp-storage-emulator GCS's ``objects.move`` (same bucket): a copy, then a delete of the source."""
    from gcp_storage_emulator import server, settings
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    def move(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> None:
        bucket, source = request.params["bucket_name"], request.params["object_id"]
        try:
            moved = objects._copy(request.base_url, storage, bucket, source, bucket,  # noqa: SLF001
                                  request.params["dest_object_id"])
        except NotFound:
            response.status = HTTPStatus.NOT_FOUND
            return
        objects._delete(storage, bucket, source)  # noqa: SLF001
        response.json(moved)

    pattern = (rf"^{settings.API_ENDPOINT}/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)"
               r"/moveTo/o/(?P<dest_object_id>.*[^/]+)$")
    if not any(route[0] == pattern for route in server.HANDLERS):
        server.HANDLERS = ((pattern, {server.POST: move}), *server.HANDLERS)


def serve_gcs_emulator(host: str, port: int) -> None:
    """gcp-storage-emulator, in memory, with :func:`add_object_move`."""
    from gcp_storage_emulator.server import create_server

    add_object_move()
    print(f"gcp-storage-emulator on {host}:{port}", flush=True)
    create_server(host, port, in_memory=True).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m providers.cloud_fakes", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fake = commands.add_parser("fake", help="the metadata server, Secret Manager, IMDS and Key Vault fake")
    gcs = commands.add_parser("gcs", help="gcp-storage-emulator with objects.move")
    for command, port in ((fake, 80), (gcs, GCS_EMULATOR_PORT)):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=port)
    fake.add_argument("--project", default="gridctl-rehearsal")
    args = parser.parse_args(argv)
    if args.command == "fake":
        FakeCloud(host=args.host, port=args.port, project=args.project, log=True).serve()
    else:
        serve_gcs_emulator(args.host, args.port)


if __name__ == "__main__":
    main()
