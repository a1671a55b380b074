"""The object store: local folder and S3 (real s3fs against a moto server on loopback)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.app import create_app
from tests.factories import Factory
from tests.test_tensors_helpers import API, as_numpy, npy_bytes, upload


class _FailsHalfway(io.RawIOBase):
    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("connection reset")
        return b"x" * 1024


def _exercise(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, not a whole number of them
    source = tmp_path / "blob"
    source.write_bytes(data)
    stored = store.put_file("tensors/a.safetensors", source)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert store.exists("tensors/a.safetensors") and store.size("tensors/a.safetensors") == len(data)
    assert b"".join(store.iter_chunks("tensors/a.safetensors")) == data
    assert store.keys() == ["tensors/a.safetensors"] and store.pending_temporaries() == []

    with pytest.raises(OSError, match="connection reset"):
        store.put_stream("tensors/b.safetensors", _FailsHalfway())  # type: ignore[arg-type]
    assert not store.exists("tensors/b.safetensors")
    assert store.keys() == ["tensors/a.safetensors"] and store.pending_temporaries() == []

    store.delete("tensors/a.safetensors")
    store.delete("tensors/a.safetensors")  # a second delete is fine
    assert store.keys() == []


class TestLocalStore:
    def test_atomic_writes_hashes_reads_and_deletes(self, tmp_path: Path) -> None:
        store = ObjectStore((tmp_path / "objects").as_uri())
        _exercise(store, tmp_path)

    def test_keys_cannot_escape_the_root(self, tmp_path: Path) -> None:
        store = ObjectStore((tmp_path / "objects").as_uri())
        with pytest.raises(ValueError, match="invalid object key"):
            store.put_stream("../outside", io.BytesIO(b"x"))
        with pytest.raises(ValueError, match="invalid object key"):
            store.delete("/etc/passwd")

    def test_default_location_is_under_the_state_dir(self, tmp_path: Path) -> None:
        settings = NodeSettings(state_dir=tmp_path / "state")
        assert settings.resolved_object_store_url == (tmp_path / "state" / "objects").resolve().as_uri()

    def test_blobs_are_0600_and_their_directories_0700(self, tmp_path: Path) -> None:
        store = ObjectStore((tmp_path / "objects").as_uri())
        store.put_stream("tensors/a.safetensors", io.BytesIO(b"data"))
        assert (tmp_path / "objects").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "objects" / "tensors").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "objects" / ".tmp").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "objects" / "tensors" / "a.safetensors").stat().st_mode & 0o777 == 0o600

    def test_sweeping_removes_only_temporaries(self, tmp_path: Path) -> None:
        store = ObjectStore((tmp_path / "objects").as_uri())
        store.put_stream("tensors/kept.safetensors", io.BytesIO(b"data"))
        (tmp_path / "objects" / ".tmp" / "killed.part").write_bytes(b"half")
        assert store.pending_temporaries() == [".tmp/killed.part"]
        assert store.sweep_temporaries() == [".tmp/killed.part"]
        assert store.pending_temporaries() == [] and store.keys() == ["tensors/kept.safetensors"]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name = "grid-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")  # noqa: S106
    client.create_bucket(Bucket=name)
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing",
               "client_kwargs": {"region_name": "us-east-1"}}
    return name, options


class TestS3Store:
    def test_atomic_writes_hashes_reads_and_deletes(self, s3_bucket: tuple[str, dict[str, Any]],
                                                    tmp_path: Path) -> None:
        bucket, options = s3_bucket
        _exercise(ObjectStore(f"s3://{bucket}/node", options), tmp_path)

    def test_a_node_stores_and_streams_tensors_in_s3(self, s3_bucket: tuple[str, dict[str, Any]],
                                                    tmp_path: Path) -> None:
        bucket, options = s3_bucket
        settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'n.db'}",
                                object_store_url=f"s3://{bucket}/node", object_store_options=options)
        with TestClient(create_app(settings)) as client:
            owner = Factory(client).owner()
            array = np.arange(10_000, dtype=np.float32)
            created = upload(client, owner.headers, npy_bytes(array), fmt="npy", visibility="public")
            assert created.status_code == 201, created.text
            data = client.get(f"{API}/tensors/{created.json()['id']}/data", headers=owner.headers)
            assert hashlib.sha256(data.content).hexdigest() == data.headers["x-content-sha256"]
            assert as_numpy(data.content).tobytes() == array.tobytes()
            listed = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing",
                                  aws_secret_access_key="testing",  # noqa: S106
                                  region_name="us-east-1").list_objects_v2(Bucket=bucket)
            keys = [o["Key"] for o in listed.get("Contents", [])]
            assert len(keys) == 1 and keys[0].startswith("node/tensors/") and keys[0].endswith(".safetensors")
            refused = upload(client, owner.headers, b"a,b\n1,x\n", fmt="csv")
            assert refused.status_code == 422
            assert client.delete(f"{API}/tensors/{created.json()['id']}", headers=owner.headers).status_code == 204
            after = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing",
                                 aws_secret_access_key="testing",  # noqa: S106
                                 region_name="us-east-1").list_objects_v2(Bucket=bucket)
            assert after.get("KeyCount", 0) == 0

    def test_a_restart_reconciles_a_bucket_with_the_database(self, s3_bucket: tuple[str, dict[str, Any]],
                                                            tmp_path: Path) -> None:
        bucket, options = s3_bucket
        settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'n.db'}",
                                object_store_url=f"s3://{bucket}/node", object_store_options=options)
        store = ObjectStore(settings.resolved_object_store_url, options)
        with TestClient(create_app(settings)) as client:
            owner = Factory(client).owner()
            kept = upload(client, owner.headers, npy_bytes(np.ones(3)), fmt="npy")
            assert kept.status_code == 201
        # What a Node killed between the blob's write and its row's commit leaves, and a killed write's part.
        store.put_stream("tensors/orphan.safetensors", io.BytesIO(b"x"))
        store.fs.pipe(f"{store.root}/.tmp/killed.part", b"half")
        assert len(store.keys("tensors/")) == 2 and store.pending_temporaries() == [".tmp/killed.part"]
        with TestClient(create_app(settings)):
            assert store.keys("tensors/") != [] and "tensors/orphan.safetensors" not in store.keys("tensors/")
            assert len(store.keys("tensors/")) == 1 and store.pending_temporaries() == []
