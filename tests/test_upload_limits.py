"""Hostile inputs get a 4xx naming the limit, never a 500, and never an allocation far past the limit.

Measured before (issue 11): a 1,591-byte ``.pt`` holding a stride-0 view was stored as 419 MB; a deeply nested
safetensors header and a CSV header over the csv module's field limit gave 500; ids past 2**63 and Unicode
digits in refs (``/users/%C2%B2``) gave 500; a tensor named ``données-τ`` could not be downloaded; an upload
held the only database session while its body streamed, so one slow client froze every user.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from tests.factories import Factory
from tests.live import LiveNode
from tests.test_tensors_helpers import API, counts, nothing_stored, npy_bytes, upload

LIMIT = 100_000
BEYOND_INT64 = [str(2**63), str(2**64), "9" * 40]


@pytest.fixture
def small_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'n.db'}",
                            max_upload_bytes=LIMIT)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _pt(tensor: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    return buffer.getvalue()


def _safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


class TestTheLimitAppliesToWhatIsStored:
    def test_a_small_pt_holding_a_stride_0_view_of_megabytes_is_a_413(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        blob = _pt(torch.zeros(1).expand(10_000_000))  # 40 MB as stored, ~1.5 KB as sent
        assert len(blob) < 4096
        response = upload(small_client, owner.headers, blob, fmt="pt")
        assert response.status_code == 413, response.text
        body = response.json()
        assert body["code"] == "payload_too_large"
        assert body["details"]["stored_bytes"] == 40_000_000 and body["details"]["max_upload_bytes"] == LIMIT
        assert counts(small_client) == nothing_stored(small_client)

    def test_a_stride_0_view_within_the_limit_is_stored_expanded(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        response = upload(small_client, owner.headers, _pt(torch.ones(1).expand(1000)), fmt="pt")
        assert response.status_code == 201, response.text
        assert response.json()["shape"] == [1000]

    def test_a_csv_that_grows_past_the_limit_as_float32_is_a_413(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        csv = b"a\n" + b"0\n" * 30_000  # 60 KB of text, 120 KB of float32
        assert len(csv) < LIMIT
        response = upload(small_client, owner.headers, csv, fmt="csv")
        assert response.status_code == 413, response.text
        assert counts(small_client) == nothing_stored(small_client)

    def test_a_csv_dataset_that_grows_past_the_limit_is_a_413(self, small_client: TestClient) -> None:
        owner = Factory(small_client).owner()
        csv = b"x,y\n" + b"0,1\n" * 20_000  # 80 KB of text; features and labels 80 KB each as float32/int64
        response = small_client.post(f"{API}/datasets/from-csv", params={"name": "big", "label": "y"}, content=csv,
                                     headers=owner.headers)
        assert response.status_code == 413, response.text
        assert counts(small_client) == nothing_stored(small_client)


class TestHostileFiles:
    def test_a_deeply_nested_safetensors_header_is_a_422(self, client: TestClient, factory: Factory) -> None:
        header = b'{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":' + b"[" * 100_000 + b"]" * 100_000 \
            + b"}}"
        response = upload(client, factory.owner().headers, _safetensors(header, b"\0" * 4), fmt="safetensors")
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_tensor"
        assert "nests too deeply" in response.json()["message"]
        assert counts(client) == nothing_stored(client)

    def test_a_safetensors_header_over_8_mib_is_refused_before_it_is_read(self, client: TestClient,
                                                                            factory: Factory) -> None:
        blob = struct.pack("<Q", 50 * 1024**2) + b"{" * 64
        response = upload(client, factory.owner().headers, blob, fmt="safetensors")
        assert response.status_code == 422
        assert response.json()["details"]["max_header_bytes"] == 8 * 1024**2

    @pytest.mark.parametrize("where", ["header", "data"])
    def test_a_csv_field_over_the_csv_modules_limit_is_a_422(self, client: TestClient, factory: Factory,
                                                             where: str) -> None:
        long = b"1" * 200_000
        csv = (b"a," + long + b"\n1,2\n") if where == "header" else (b"a,b\n1," + long + b"\n")
        response = upload(client, factory.owner().headers, csv, fmt="csv")
        assert response.status_code == 422, response.text
        assert response.json()["details"]["max_field_chars"] == 131_072
        assert counts(client) == nothing_stored(client)


class TestIdsAreBounded:
    @pytest.mark.parametrize("path", ["/tensors/{}", "/tensors/{}/data", "/jobs/{}", "/results/{}",
                                      "/requests/{}", "/budget/datasets/{}"])
    @pytest.mark.parametrize("number", BEYOND_INT64)
    def test_an_id_past_2_63_in_a_path_is_a_422(self, client: TestClient, factory: Factory, path: str,
                                                number: str) -> None:
        response = client.get(API + path.format(number), headers=factory.owner().headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_input"

    def test_the_largest_id_is_simply_not_found(self, client: TestClient, factory: Factory) -> None:
        response = client.get(f"{API}/tensors/{2**31 - 1}", headers=factory.owner().headers)
        assert response.status_code == 404

    @pytest.mark.parametrize("query", [{"offset": str(2**63)}, {"uploader": str(2**64)}])
    def test_an_offset_or_uploader_past_2_63_is_a_422(self, client: TestClient, factory: Factory,
                                                      query: dict[str, str]) -> None:
        response = client.get(f"{API}/tensors", params=query, headers=factory.owner().headers)
        assert response.status_code == 422, response.text

    def test_a_target_id_past_2_63_in_a_body_is_a_422(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        for path, body in (("/permissions", {"subject_type": "user", "subject": owner.id, "target_type": "tensor",
                                             "target_id": 2**64, "level": "download"}),
                           ("/requests", {"kind": "access", "target_type": "tensor", "target_id": 2**63,
                                          "level": "compute"})):
            response = client.post(API + path, json=body, headers=owner.headers)
            assert response.status_code == 422, (path, response.text)

    @pytest.mark.parametrize("subject", [2**64, "99999999999999999999999"])
    def test_a_huge_subject_names_nobody(self, client: TestClient, factory: Factory, subject: object) -> None:
        owner = factory.owner()
        tensor = factory.tensor()
        response = client.post(f"{API}/permissions", headers=owner.headers, json={
            "subject_type": "user", "subject": subject, "target_type": "tensor", "target_id": tensor,
            "level": "download"})
        assert response.status_code == 404, response.text


UNICODE_DIGITS = ["²", "٣", "１２"]  # superscript two, Arabic-Indic three, full-width twelve


class TestRefsAreAsciiIds:
    @pytest.mark.parametrize("ref", UNICODE_DIGITS)
    @pytest.mark.parametrize("method,path", [
        ("GET", "/users/{}"), ("GET", "/roles/{}"), ("GET", "/groups/{}"), ("GET", "/datasets/{}"),
        ("DELETE", "/tokens/{}"), ("GET", "/budget/users/{}"), ("GET", "/quotas/{}"),
        ("PUT", "/groups/1/members/{}"), ("DELETE", "/datasets/{}"), ("DELETE", "/roles/{}")])
    def test_unicode_digits_are_a_name_that_is_not_found(self, client: TestClient, factory: Factory, ref: str,
                                                         method: str, path: str) -> None:
        owner = factory.owner()
        factory.group("g")
        response = client.request(method, API + path.format(quote(ref)), headers=owner.headers)
        assert response.status_code == 404, (path, response.text)

    @pytest.mark.parametrize("ref", UNICODE_DIGITS)
    def test_unicode_digits_filter_the_audit_log_by_email(self, client: TestClient, factory: Factory,
                                                          ref: str) -> None:
        response = client.get(f"{API}/audit", params={"actor": ref}, headers=factory.owner().headers)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []

    def test_ascii_digits_still_name_an_id(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        response = client.get(f"{API}/users/ {owner.id} ".replace(" ", "%20"), headers=owner.headers)
        assert response.status_code == 200 and response.json()["id"] == owner.id


class TestNamesAsGiven:
    @pytest.mark.parametrize("name", ["données-τ", "数据", 'quote"semi;colon', "space d name"])
    def test_a_tensor_named_in_any_script_downloads_under_its_name(self, client: TestClient, factory: Factory,
                                                                   name: str) -> None:
        owner = factory.owner()
        created = upload(client, owner.headers, npy_bytes(np.ones(3, dtype=np.float32)), fmt="npy", name=name)
        assert created.status_code == 201, created.text
        assert created.json()["name"] == name
        response = client.get(f"{API}/tensors/{created.json()['id']}/data", headers=owner.headers)
        assert response.status_code == 200
        disposition = response.headers["content-disposition"]
        assert disposition.isascii()
        assert f"filename*=UTF-8''{quote(name + '.safetensors', safe='')}" in disposition
        fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
        assert fallback.endswith(".safetensors") and '"' not in fallback and ";" not in fallback


def _trickle_upload(node: LiveNode, token: str, stop: threading.Event, sent: list[int]) -> None:
    """An upload whose body arrives slowly (20 KiB/s: above the Node's minimum rate, far below a LAN's)."""
    parts = urlsplit(node.api)
    body_length = 50_000_000
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall((f"POST {parts.path}/tensors?name=slow&format=csv HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                          f"Authorization: Bearer {token}\r\nContent-Length: {body_length}\r\n\r\n").encode())
            sock.sendall(b"a\n")
            while not stop.is_set():
                sock.sendall(b"1\n" * 512)
                sent[0] += 1024
                time.sleep(0.05)
    except OSError:
        sent.append(-1)  # the Node answered or closed the connection: the upload is no longer streaming


class TestASlowUploadDoesNotBlockOthers:
    def test_other_users_are_served_while_an_upload_trickles_in(self, live_node: LiveNode) -> None:
        stop, sent = threading.Event(), [0]
        worker = threading.Thread(target=_trickle_upload, args=(live_node, live_node.owner_token, stop, sent),
                                  daemon=True)
        worker.start()
        try:
            time.sleep(1.0)  # the upload is authenticated and streaming
            assert sent[0] > 0
            headers = {"Authorization": f"Bearer {live_node.owner_token}"}
            timings = []
            for _ in range(5):
                started = time.monotonic()
                me = httpx.get(f"{live_node.api}/users/me", headers=headers, timeout=10)
                assert me.status_code == 200
                created = httpx.post(f"{live_node.api}/groups", headers=headers, timeout=10,
                                     json={"name": f"while-uploading-{time.monotonic_ns()}"})
                assert created.status_code == 201, created.text
                timings.append(time.monotonic() - started)
            assert worker.is_alive() and len(sent) == 1, "the upload should still be streaming"
            assert max(timings) < 2.0, timings
        finally:
            stop.set()
            worker.join(timeout=10)
