"""What plays GCP in a rehearsal (providers/cloud_fakes.py), checked on loopback against the real clients:
google-auth finds Compute Engine credentials at the fake metadata server, the rendered bootstrap.py reads a secret
created through Secret Manager's API, and fetches, checks and publishes files through gcp-storage-emulator,
which the rehearsal teaches GCS's ``objects.move`` (gcsfs's rename). No root needed."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.cloud_fakes import TOKEN, FakeCloud
from tests.cloud_checks import fake_build
from tests.rehearsal.test_bootstrap import load_bootstrap

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def fake() -> Iterator[FakeCloud]:
    cloud = FakeCloud(project="gridctl-rehearsal").start()
    yield cloud
    cloud.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _emulator(argv: list[str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen([*argv, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if call("GET", url + "/")[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "the emulator did not start"
        time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def storage() -> Iterator[str]:
    """gcp-storage-emulator as the rehearsal runs it (with objects.move)."""
    yield from _emulator([sys.executable, "-m", "providers.cloud_fakes", "gcs"])


def _bucket(url: str, name: str = "tensors-rehearsal") -> str:
    status, body = call("POST", f"{url}/storage/v1/b?project=p", json.dumps({"name": name}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, body
    return name


def test_google_auth_finds_compute_engine_credentials_at_the_fake_metadata_server(
    fake: FakeCloud, tmp_path: Path
) -> None:
    """What the Node's gcsfs does on a GCE machine: google.auth.default() pings the metadata server, takes the
    project and the service account from it, then the account's token."""
    host = fake.url.removeprefix("http://")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env.update(GCE_METADATA_HOST=host, GCE_METADATA_IP=host, HOME=str(tmp_path), NO_GCE_CHECK="false")
    script = ("import google.auth, google.auth.transport.requests as r\n"
              "credentials, project = google.auth.default()\n"
              "credentials.refresh(r.Request())\n"
              "print(type(credentials).__module__, project, credentials.token, credentials.service_account_email)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    module, project, token, email = done.stdout.split()
    assert module == "google.auth.compute_engine.credentials" and project == "gridctl-rehearsal"
    assert token == TOKEN and email == "gridctl-rehearsal@gridctl-rehearsal.iam.gserviceaccount.com"
    paths = [path for _, path in fake.requests]
    assert "/" in paths and any(p.endswith("/token") or "/token?" in p for p in paths)


def test_the_metadata_server_refuses_a_request_without_its_header(fake: FakeCloud) -> None:
    token = f"{fake.url}/computeMetadata/v1/instance/service-accounts/default/token"
    assert call("GET", token)[0] == 403
    status, body = call("GET", token, headers={"Metadata-Flavor": "Google"})
    assert status == 200 and json.loads(body)["access_token"] == TOKEN


def test_a_secret_created_through_secret_managers_api_is_what_the_bootstrap_reads(
    fake: FakeCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"{fake.url}/v1/projects/gridctl-rehearsal/secrets"
    json_auth = {**AUTH, "Content-Type": "application/json"}
    assert call("POST", f"{base}?secretId=gridctl-demo-ray-token", b"{}", json_auth)[0] == 200
    assert call("POST", f"{base}?secretId=gridctl-demo-ray-token", b"{}", json_auth)[0] == 409
    payload = json.dumps({"payload": {"data": base64.b64encode(b"the-ray-token").decode()}}).encode()
    assert call("POST", f"{base}/gridctl-demo-ray-token:addVersion", payload, json_auth)[0] == 200
    assert call("GET", f"{base}/gridctl-demo-ray-token/versions/latest:access")[0] == 401  # no token, no secret
    assert call("GET", f"{base}/missing/versions/latest:access", headers=AUTH)[0] == 404
    module = load_bootstrap("gcp", "worker", tmp_path, fake.environment("gcp"), monkeypatch)
    monkeypatch.setattr(module, "PROJECT", "gridctl-rehearsal")
    assert module.read_secret("gridctl-demo-ray-token") == "the-ray-token"


def test_the_bootstrap_fetches_checks_and_publishes_through_the_storage_emulator(
    fake: FakeCloud, storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**fake.environment("gcp"), "GRIDCTL_GCP_STORAGE_URL": storage}
    module = load_bootstrap("gcp", "node", tmp_path, env, monkeypatch)
    monkeypatch.setattr(module, "BUCKET", _bucket(storage))
    build = fake_build()
    module.put_object(module.BUILD["wheel_key"], Path(build.wheel_path).read_bytes())
    target = tmp_path / "wheel.whl"
    module.fetch_verified(module.BUILD["wheel_key"], module.BUILD["wheel_sha256"], str(target))
    assert target.read_bytes() == Path(build.wheel_path).read_bytes()
    module.put_object(module.BUILD["wheel_key"], b"swapped\n")
    with pytest.raises(SystemExit, match="refusing to install it"):
        module.fetch_verified(module.BUILD["wheel_key"], module.BUILD["wheel_sha256"], str(tmp_path / "other"))
    assert not (tmp_path / "other").exists()


def _object(url: str, bucket: str, key: str) -> str:
    return f"{url}/storage/v1/b/{bucket}/o/{urllib.request.quote(key, safe='')}"


def _move(url: str, bucket: str, source: str, target: str) -> tuple[int, Any]:
    quote = urllib.request.quote
    status, body = call("POST", f"{url}/storage/v1/b/{bucket}/o/{quote(source, safe='')}/moveTo/o/"
                                f"{quote(target, safe='')}", b"{}", {"Content-Type": "application/json"})
    return status, body


def _upload(url: str, bucket: str, key: str, body: bytes) -> None:
    status, answer = call("POST", f"{url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name="
                                  f"{urllib.request.quote(key, safe='')}", body,
                          {"Content-Type": "application/octet-stream"})
    assert status == 200, answer


def test_the_emulator_moves_an_object_as_gcs_objects_move_does(storage: str) -> None:
    bucket = _bucket(storage)
    _upload(storage, bucket, ".tmp/abc.part", b"x" * 1000)
    status, body = _move(storage, bucket, ".tmp/abc.part", "tensors/abc.safetensors")
    assert status == 200 and json.loads(body)["name"] == "tensors/abc.safetensors"
    assert call("GET", _object(storage, bucket, ".tmp/abc.part"))[0] == 404
    assert call("GET", _object(storage, bucket, "tensors/abc.safetensors") + "?alt=media") == (200, b"x" * 1000)
    assert _move(storage, bucket, "missing", "elsewhere")[0] == 404


def test_without_the_added_route_the_emulator_does_not_implement_objects_move() -> None:
    """Why providers/cloud_fakes.py adds it: gcsfs retries a 501 for half a minute on every rename."""
    for url in _emulator([sys.executable, "-m", "gcp_storage_emulator", "start", "--in-memory"]):
        bucket = _bucket(url)
        _upload(url, bucket, "a", b"1")
        assert _move(url, bucket, "a", "b")[0] == 501
