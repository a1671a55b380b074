"""Helpers shared by the tensor, dataset and search tests (no tests here; candidates for tests/factories.py)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from safetensors.numpy import load as load_safetensors_numpy
from sqlalchemy import func, select

from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.tensors.models import Tensor, TensorTag, shape_key
from tests.factories import Factory

API = "/api/v1"


def upload(client: TestClient, headers: dict[str, str], data: bytes, *, name: str = "t", fmt: str | None = None,
           filename: str | None = None, **params: Any) -> Any:
    query: dict[str, Any] = {"name": name, **params}
    if fmt:
        query["format"] = fmt
    if filename:
        query["filename"] = filename
    return client.post(f"{API}/tensors", params=query, content=data, headers=headers)


def store_of(client: TestClient) -> ObjectStore:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    return ObjectStore(settings.resolved_object_store_url, settings.object_store_options)


def counts(client: TestClient) -> dict[str, int]:
    """How many tensor rows, tag rows, datasets and blobs exist, and whether upload scratch space is empty."""
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    store = store_of(client)
    uploads = settings.state_dir / "uploads"
    with sessions() as session:
        return {
            "tensors": session.scalar(select(func.count()).select_from(Tensor)) or 0,
            "tags": session.scalar(select(func.count()).select_from(TensorTag)) or 0,
            "datasets": session.scalar(select(func.count()).select_from(Dataset)) or 0,
            "blobs": len(store.keys()),
            "temporaries": len(store.pending_temporaries()),
            "scratch": len(list(uploads.iterdir())) if uploads.exists() else 0,
        }


def nothing_stored(client: TestClient) -> dict[str, int]:
    return {"tensors": 0, "tags": 0, "datasets": 0, "blobs": 0, "temporaries": 0, "scratch": 0}


def parse_safetensors(blob: bytes) -> tuple[str, list[int], bytes]:
    """(safetensors dtype code, shape, raw data bytes) of a one-tensor file."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    ((_, entry),) = header.items()
    begin, end = entry["data_offsets"]
    return entry["dtype"], entry["shape"], blob[8 + n + begin:8 + n + end]


def as_numpy(blob: bytes) -> np.ndarray[Any, Any]:
    ((_, array),) = load_safetensors_numpy(blob).items()
    return array


def npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def add_tensor_row(factory: Factory, *, name: str, description: str = "", tags: tuple[str, ...] = (),
                   visibility: str = "private", dtype: str = "float32", shape: tuple[int, ...] = (2, 2),
                   uploader_id: int | None = None, size: int = 16) -> int:
    """A tensor row without a blob, for search tests (search never reads blobs)."""
    with factory.sessions.begin() as session:
        tensor = Tensor(name=name, description=description, shape=list(shape), ndim=len(shape),
                        shape_key=shape_key(list(shape)), dtype=dtype, size_bytes=size, sha256="0" * 64,
                        visibility=visibility, object_key=f"tensors/fake-{name}-{id(object())}.safetensors",
                        uploader_id=uploader_id)
        session.add(tensor)
        session.flush()
        for tag in tags:
            session.add(TensorTag(tensor_id=tensor.id, tag=tag))
        return tensor.id


def audit_actions(client: TestClient) -> list[str]:
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
