"""Tensor upload, download, metadata and deletion through the API."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.numpy import save as save_numpy
from safetensors.torch import save as save_torch

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from tests.factories import Factory, MadeUser
from tests.test_tensors_helpers import (
    API,
    as_numpy,
    audit_actions,
    counts,
    nothing_stored,
    npy_bytes,
    parse_safetensors,
    store_of,
    upload,
)


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _download(client: TestClient, user: MadeUser, tensor_id: int) -> bytes:
    response = client.get(f"{API}/tensors/{tensor_id}/data", headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    assert int(response.headers["content-length"]) == len(response.content)
    return response.content


def _public_upload(client: TestClient, user: MadeUser, data: bytes, fmt: str, **params: Any) -> dict[str, Any]:
    response = upload(client, user.headers, data, fmt=fmt, visibility="public", **params)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


NUMPY_ARRAYS = {
    "float32 matrix": np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    "int64 vector": np.array([-(2**62), 0, 2**62 - 1], dtype=np.int64),
    "uint8 image": np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5),
    "bool mask": np.array([[True, False], [False, True]]),
    "float16": np.linspace(-1, 1, 9, dtype=np.float16),
    "float64 scalar": np.array(3.141592653589793),
    "empty rows": np.zeros((0, 3), dtype=np.float32),
    "big-endian int32": np.arange(6, dtype=">i4").reshape(2, 3),
    "fortran order": np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
}


class TestUploadRoundTrips:
    def test_safetensors_is_stored_and_returned_byte_for_byte(self, any_db_client: TestClient,
                                                               any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        blob = save_numpy({"weights": np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)},
                          metadata={"source": "test"})
        out = _public_upload(any_db_client, owner, blob, "safetensors", name="weights")
        assert (out["dtype"], out["shape"], out["sha256"]) == ("float32", [5, 7], hashlib.sha256(blob).hexdigest())
        assert _download(any_db_client, owner, out["id"]) == blob

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn, torch.int16, torch.complex64])
    def test_safetensors_dtypes_numpy_lacks_round_trip(self, client: TestClient, factory: Factory,
                                                       dtype: torch.dtype) -> None:
        owner = factory.owner()
        tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3).to(dtype)
        blob = save_torch({"t": tensor})
        out = _public_upload(client, owner, blob, "safetensors")
        assert out["dtype"] == str(dtype).removeprefix("torch.")
        assert _download(client, owner, out["id"]) == blob

    @pytest.mark.parametrize("case", sorted(NUMPY_ARRAYS))
    def test_npy_round_trips_values_dtype_and_shape(self, client: TestClient, factory: Factory, case: str) -> None:
        owner = factory.owner()
        array = NUMPY_ARRAYS[case]
        out = _public_upload(client, owner, npy_bytes(array), "npy")
        back = as_numpy(_download(client, owner, out["id"]))
        assert back.shape == array.shape and out["shape"] == list(array.shape)
        assert back.dtype == array.dtype.newbyteorder("=")
        assert back.tobytes() == np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()

    def test_npz_with_one_array_round_trips(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        array = np.arange(20, dtype=np.int32).reshape(4, 5)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=array)
        out = _public_upload(any_db_client, owner, buffer.getvalue(), "npz", name="from npz")
        back = as_numpy(_download(any_db_client, owner, out["id"]))
        assert back.dtype == np.int32 and back.tobytes() == array.tobytes()

    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.float16])
    def test_pt_round_trips_bit_for_bit(self, client: TestClient, factory: Factory, dtype: torch.dtype) -> None:
        owner = factory.owner()
        tensor = (torch.randn(4, 6, generator=torch.Generator().manual_seed(1)) * 5).to(dtype)
        out = _public_upload(client, owner, _torch_bytes(tensor), "pt")
        code, shape, data = parse_safetensors(_download(client, owner, out["id"]))
        assert shape == [4, 6] and out["dtype"] == str(dtype).removeprefix("torch.")
        assert data == tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes()

    def test_pt_non_contiguous_tensor_and_single_entry_dict(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        tensor = torch.arange(12, dtype=torch.float64).reshape(3, 4).t()  # a transposed view
        out = _public_upload(client, owner, _torch_bytes({"only": tensor}), "pt", filename="x.pth")
        back = as_numpy(_download(client, owner, out["id"]))
        assert back.shape == (4, 3) and np.array_equal(back, tensor.numpy())

    def test_csv_becomes_float32_with_its_column_names(self, any_db_client: TestClient,
                                                       any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        text = "age,income, score\n31,52000.5,0.25\n45,61000,-1e-3\n\n29,1.5e4,nan\n"
        out = _public_upload(any_db_client, owner, text.encode(), "csv", name="people")
        assert out["columns"] == ["age", "income", "score"] and out["shape"] == [3, 3]
        back = as_numpy(_download(any_db_client, owner, out["id"]))
        expected = np.array([[31, 52000.5, 0.25], [45, 61000, -1e-3], [29, 1.5e4, np.nan]], dtype=np.float32)
        assert back.dtype == np.float32 and back.tobytes() == expected.tobytes()

    def test_format_comes_from_the_filename_suffix(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        response = upload(client, owner.headers, npy_bytes(np.ones(3)), filename="ones.NPY")
        assert response.status_code == 201 and response.json()["shape"] == [3]


class _WritesAFile:
    """Unpickling this creates a file: the payload the Node must never run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _lying_header(real: bytes) -> bytes:
    (n,) = struct.unpack("<Q", real[:8])
    return struct.pack("<Q", n + 10_000) + real[8:]


def _offsets_disagree_with_shape() -> bytes:
    header = json.dumps({"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * 12


class TestUploadRefusals:
    def test_npy_with_a_pickle_payload_is_refused_and_never_unpickled(
        self, client: TestClient, factory: Factory, tmp_path: Path
    ) -> None:
        owner = factory.owner()
        marker = tmp_path / "pwned-npy"
        payload = np.empty(1, dtype=object)
        payload[0] = _WritesAFile(marker)
        buffer = io.BytesIO()
        np.save(buffer, payload, allow_pickle=True)
        response = upload(client, owner.headers, buffer.getvalue(), fmt="npy")
        assert response.status_code == 422
        assert "pickle" in response.json()["message"] or "object" in response.json()["message"].lower()
        assert not marker.exists()
        assert counts(client) == nothing_stored(client)

    def test_a_raw_pickle_named_npy_is_refused(self, client: TestClient, factory: Factory, tmp_path: Path) -> None:
        owner = factory.owner()
        marker = tmp_path / "pwned-raw"
        response = upload(client, owner.headers, pickle.dumps(_WritesAFile(marker)), filename="evil.npy")
        assert response.status_code == 422 and not marker.exists()
        assert counts(client) == nothing_stored(client)

    def test_pt_with_a_pickle_payload_is_refused_and_never_unpickled(
        self, client: TestClient, factory: Factory, tmp_path: Path
    ) -> None:
        owner = factory.owner()
        marker = tmp_path / "pwned-pt"
        response = upload(client, owner.headers, _torch_bytes({"w": _WritesAFile(marker)}), fmt="pt")
        assert response.status_code == 422
        assert "weights_only" in response.json()["message"]
        assert not marker.exists()
        assert counts(client) == nothing_stored(client)

    def test_truncated_safetensors_is_refused(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        blob = save_numpy({"x": np.ones((10, 10), dtype=np.float32)})
        response = upload(client, owner.headers, blob[:-40], fmt="safetensors")
        assert response.status_code == 422
        assert "truncated" in response.json()["message"]
        assert counts(client) == nothing_stored(client)

    def test_safetensors_whose_header_lies_about_its_size_is_refused(self, client: TestClient,
                                                                      factory: Factory) -> None:
        owner = factory.owner()
        blob = _lying_header(save_numpy({"x": np.ones(4, dtype=np.float32)}))
        response = upload(client, owner.headers, blob, fmt="safetensors")
        assert response.status_code == 422
        assert "header says it is" in response.json()["message"]
        assert counts(client) == nothing_stored(client)

    @pytest.mark.parametrize(("blob", "problem"), [
        (_offsets_disagree_with_shape(), "do not match shape"),
        (save_numpy({"a": np.ones(2), "b": np.ones(2)}), "exactly one tensor"),
        (b"\x05\x00\x00", "shorter than the 8-byte"),
        (struct.pack("<Q", 4) + b"nope", "not valid JSON"),
        (save_numpy({"a": np.ones(2, dtype=np.float32)}) + b"extra", "after the tensor data"),
    ])
    def test_other_malformed_safetensors_are_refused_naming_the_problem(
        self, client: TestClient, factory: Factory, blob: bytes, problem: str
    ) -> None:
        response = upload(client, factory.owner().headers, blob, fmt="safetensors")
        assert response.status_code == 422 and problem in response.json()["message"]
        assert counts(client) == nothing_stored(client)

    def test_csv_with_text_in_a_numeric_column_is_refused(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        response = upload(client, owner.headers, b"a,b\n1,2\n3,three\n", fmt="csv")
        assert response.status_code == 422
        body = response.json()
        assert body["details"]["column"] == "b" and body["details"]["line"] == 3
        assert "'three' is not a number" in body["message"]
        assert counts(client) == nothing_stored(client)

    @pytest.mark.parametrize(("data", "fmt", "problem"), [
        (b"a,b\n1,2\n3\n", "csv", "has 1 fields"),
        (b"a,a\n1,2\n", "csv", "repeats a column"),
        (b"a,b\n", "csv", "no data rows"),
        (b"not a zip", "npz", "not a zip"),
        (b"\x93NUMPY garbage", "npy", "not a valid .npy"),
        (b"whatever", "hdf5", "unsupported format"),
        (npy_bytes(np.array(["a", "b"])), "npy", "not a supported numeric dtype"),
    ])
    def test_malformed_or_unsupported_files_are_refused(
        self, client: TestClient, factory: Factory, data: bytes, fmt: str, problem: str
    ) -> None:
        response = upload(client, factory.owner().headers, data, fmt=fmt)
        assert response.status_code == 422 and problem in response.json()["message"], response.json()
        assert counts(client) == nothing_stored(client)

    def test_npz_with_several_arrays_is_refused(self, client: TestClient, factory: Factory) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, a=np.ones(2), b=np.zeros(2))
        response = upload(client, factory.owner().headers, buffer.getvalue(), fmt="npz")
        assert response.status_code == 422 and "exactly one array" in response.json()["message"]

    def test_pt_holding_something_other_than_a_tensor_is_refused(self, client: TestClient,
                                                                   factory: Factory) -> None:
        response = upload(client, factory.owner().headers, _torch_bytes([1, 2, 3]), fmt="pt")
        assert response.status_code == 422 and "holds a list" in response.json()["message"]

    def test_without_a_format_or_filename_the_upload_is_refused_before_reading(
        self, client: TestClient, factory: Factory
    ) -> None:
        response = upload(client, factory.owner().headers, b"abc")
        assert response.status_code == 422 and "format=" in response.json()["message"]

    def test_needs_upload_data(self, client: TestClient, factory: Factory) -> None:
        response = upload(client, factory.user().headers, npy_bytes(np.ones(2)), fmt="npy")
        assert response.status_code == 403 and "upload_data" in response.json()["message"]
        assert counts(client) == nothing_stored(client)


class TestUploadLimit:
    @pytest.fixture
    def small_client(self, tmp_path: Path) -> Any:
        settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'n.db'}",
                                max_upload_bytes=1000)
        with TestClient(create_app(settings)) as test_client:
            yield test_client

    def test_an_oversized_upload_is_a_413_and_nothing_is_stored(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        response = upload(small_client, owner.headers, npy_bytes(np.ones(500)), fmt="npy")
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert counts(small_client) == nothing_stored(small_client)

    def test_an_oversized_body_without_content_length_is_cut_off_while_streaming(
        self, small_client: TestClient
    ) -> None:
        owner = Factory(small_client).owner()

        def chunks() -> Any:
            for _ in range(20):
                yield b"x" * 100

        response = small_client.post(f"{API}/tensors", params={"name": "s", "format": "csv"}, content=chunks(),
                                     headers=owner.headers)
        assert response.status_code == 413
        assert counts(small_client) == nothing_stored(small_client)

    def test_an_npz_that_expands_past_the_limit_is_a_413(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x=np.zeros(10_000))
        assert len(buffer.getvalue()) < 1000
        response = upload(small_client, owner.headers, buffer.getvalue(), fmt="npz")
        assert response.status_code == 413
        assert counts(small_client) == nothing_stored(small_client)


class TestDownload:
    def test_private_tensor_needs_download_level(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        scientist = any_db_factory.user()
        tensor_id = upload(any_db_client, owner.headers, npy_bytes(np.ones(3)), fmt="npy").json()["id"]
        refused = any_db_client.get(f"{API}/tensors/{tensor_id}/data", headers=scientist.headers)
        assert refused.status_code == 403
        assert refused.json()["details"]["needed"] == "download"
        assert refused.json()["details"]["have"] == "search"
        grant = any_db_client.post(f"{API}/permissions", headers=owner.headers, json={
            "subject_type": "user", "subject": str(scientist.id), "target_type": "tensor", "target_id": tensor_id,
            "level": "download"})
        assert grant.status_code == 201, grant.text
        assert as_numpy(_download(any_db_client, scientist, tensor_id)).tolist() == [1.0, 1.0, 1.0]

    def test_the_uploader_downloads_their_private_tensor_through_a_revocable_grant(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner()
        tensor_id = upload(client, owner.headers, npy_bytes(np.arange(3.0)), fmt="npy").json()["id"]
        assert as_numpy(_download(client, owner, tensor_id)).tolist() == [0.0, 1.0, 2.0]
        grants = client.get(f"{API}/permissions", headers=owner.headers,
                            params={"target_type": "tensor", "target_id": tensor_id}).json()
        grants = grants["items"] if isinstance(grants, dict) else grants
        (mine,) = [g for g in grants if g["level"] == "download"]
        assert client.delete(f"{API}/permissions/{mine['id']}", headers=owner.headers).status_code in (200, 204)
        assert client.get(f"{API}/tensors/{tensor_id}/data", headers=owner.headers).status_code == 403

    def test_public_tensor_downloads_for_anyone_and_is_audited(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        out = _public_upload(client, owner, npy_bytes(np.arange(4)), "npy")
        _download(client, factory.user(), out["id"])
        assert "tensor.downloaded" in audit_actions(client)

    def test_unknown_tensor_is_404(self, client: TestClient, factory: Factory) -> None:
        response = client.get(f"{API}/tensors/999/data", headers=factory.user().headers)
        assert response.status_code == 404


class TestEditAndDelete:
    def _uploader(self, factory: Factory) -> MadeUser:
        return factory.user(capabilities={Capability.upload_data})

    def test_uploader_edits_tags_and_visibility_of_their_own(self, client: TestClient, factory: Factory) -> None:
        uploader = self._uploader(factory)
        tensor_id = upload(client, uploader.headers, npy_bytes(np.ones(2)), fmt="npy", tag=["a"]).json()["id"]
        patched = client.patch(f"{API}/tensors/{tensor_id}", headers=uploader.headers,
                               json={"description": "ones", "visibility": "public", "name": "ones"})
        assert patched.status_code == 200
        assert (patched.json()["description"], patched.json()["visibility"]) == ("ones", "public")
        tagged = client.put(f"{API}/tensors/{tensor_id}/tags/Vision", headers=uploader.headers)
        assert tagged.json()["tags"] == ["a", "vision"]
        untagged = client.delete(f"{API}/tensors/{tensor_id}/tags/a", headers=uploader.headers)
        assert untagged.json()["tags"] == ["vision"]
        assert client.delete(f"{API}/tensors/{tensor_id}/tags/a", headers=uploader.headers).status_code == 404
        assert {"tensor.uploaded", "tensor.updated", "tensor.tagged", "tensor.untagged"} <= set(audit_actions(client))

    def test_others_cannot_edit_or_delete_but_manage_permissions_can(self, client: TestClient,
                                                                      factory: Factory) -> None:
        uploader = self._uploader(factory)
        other_uploader = self._uploader(factory)
        admin = factory.user("Administrator")
        tensor_id = upload(client, uploader.headers, npy_bytes(np.ones(2)), fmt="npy").json()["id"]
        for user in (other_uploader, factory.user()):
            assert client.patch(f"{API}/tensors/{tensor_id}", headers=user.headers,
                                json={"visibility": "public"}).status_code == 403
            assert client.delete(f"{API}/tensors/{tensor_id}", headers=user.headers).status_code == 403
        assert client.patch(f"{API}/tensors/{tensor_id}", headers=admin.headers,
                            json={"visibility": "public"}).status_code == 200
        assert client.delete(f"{API}/tensors/{tensor_id}", headers=admin.headers).status_code == 204

    def test_delete_removes_the_row_the_tags_and_the_blob(self, any_db_client: TestClient,
                                                          any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        tensor_id = upload(any_db_client, owner.headers, npy_bytes(np.ones(2)), fmt="npy", tag=["x"]).json()["id"]
        assert counts(any_db_client)["blobs"] == 1
        assert any_db_client.delete(f"{API}/tensors/{tensor_id}", headers=owner.headers).status_code == 204
        assert counts(any_db_client) == nothing_stored(any_db_client)
        assert any_db_client.get(f"{API}/tensors/{tensor_id}", headers=owner.headers).status_code == 404
        assert "tensor.deleted" in audit_actions(any_db_client)


class TestFailedCommit:
    def test_a_failure_after_the_blob_is_written_leaves_no_blob(self, client: TestClient, factory: Factory,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        from grid_runtime.node.tensors import service

        owner = factory.owner()

        def broken_audit(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("database went away")

        monkeypatch.setattr(service.audit, "record", broken_audit)
        with pytest.raises(RuntimeError):
            upload(client, owner.headers, npy_bytes(np.ones(2)), fmt="npy")
        assert counts(client) == nothing_stored(client)
        assert store_of(client).keys() == []

