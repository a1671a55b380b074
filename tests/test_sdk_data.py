"""The data SDK against a real Node: uploads, pointers, search, get(), datasets, permissions, requests."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import gridctl
from gridctl.sdk import errors
from gridctl.sdk.data import AccessDenied, DatasetPointer, Request, SearchResults, TensorPointer
from gridctl.sdk.node import Node
from gridctl.sdk.transfer import ChecksumMismatch
from tests.live import LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"


def word() -> str:
    """A word no other test uses, to find exactly this test's tensors."""
    return f"w{secrets.token_hex(5)}"


@pytest.fixture
def owner(live_node: LiveNode) -> Iterator[Node]:
    with gridctl.connect(live_node.url, token=live_node.owner_token) as node:
        yield node


def make_user(owner: Node, live_node: LiveNode, role: str = "Data Scientist") -> tuple[dict, Node]:
    email = f"sdk-data{next(_seq)}-{secrets.token_hex(3)}@example.com"
    user = owner.users.create(email, PASSWORD, role=role)
    return user, gridctl.connect(live_node.url, token=live_node.login(email, PASSWORD))


@pytest.fixture
def scientist(owner: Node, live_node: LiveNode) -> Iterator[tuple[dict, Node]]:
    user, node = make_user(owner, live_node)
    yield user, node
    node.close()


def stored_blob(live_node: LiveNode, sha256: str) -> Path:
    """The one file in the live Node's object store that holds the bytes with this sha256."""
    found = [path for path in live_node.state_dir.rglob("*.safetensors")
             if hashlib.sha256(path.read_bytes()).hexdigest() == sha256]
    assert len(found) == 1, f"expected one stored blob with sha256 {sha256}, found {len(found)}"
    return found[0]


class TestUpload:
    def test_a_torch_tensor_round_trips_bit_for_bit(self, owner: Node) -> None:
        original = torch.randn(5, 3, dtype=torch.float64)
        pointer = owner.tensors.upload(original, name=word(), visibility="public")
        assert isinstance(pointer, TensorPointer)
        assert (pointer.shape, pointer.dtype, pointer.visibility) == ([5, 3], "float64", "public")
        fetched = pointer.get()
        assert fetched.dtype == torch.float64
        assert torch.equal(fetched, original)

    def test_a_file_is_streamed_with_progress_reports(self, owner: Node, tmp_path: Path) -> None:
        array = np.arange(200_000, dtype=np.int32).reshape(1000, 200)
        path = tmp_path / "numbers.npy"
        np.save(path, array, allow_pickle=False)
        reports: list[tuple[int, int | None]] = []
        pointer = owner.tensors.upload(path, name=word(), tags=["sdk-upload", "ints"], description="counting",
                                       visibility="public", progress=lambda done, total: reports.append((done, total)))
        size = path.stat().st_size
        assert reports[0] == (0, size) and reports[-1] == (size, size)
        assert [done for done, _ in reports] == sorted(done for done, _ in reports)
        assert (pointer.dtype, pointer.shape, pointer.tags) == ("int32", [1000, 200], ["ints", "sdk-upload"])
        assert pointer.description == "counting"
        assert np.array_equal(pointer.get().numpy(), array)

    def test_a_safetensors_file_keeps_its_sha256_on_download(self, owner: Node, tmp_path: Path) -> None:
        path = tmp_path / "weights.safetensors"
        save_file({"w": torch.ones(4, 4, dtype=torch.bfloat16)}, str(path))
        pointer = owner.tensors.upload(path, name=word(), visibility="public")
        saved = pointer.download(tmp_path / "copy.safetensors")
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == pointer.sha256
        assert torch.equal(next(iter(load_file(str(saved)).values())), torch.ones(4, 4, dtype=torch.bfloat16))

    def test_a_malformed_file_is_refused_with_the_nodes_reason(self, owner: Node, tmp_path: Path) -> None:
        path = tmp_path / "broken.npy"
        path.write_bytes(b"this is not an npy file at all")
        with pytest.raises(errors.InvalidInput) as caught:
            owner.tensors.upload(path, name=word())
        assert caught.value.status == 422
        assert "npy" in caught.value.message.lower()

    def test_a_missing_file_is_a_usage_error(self, owner: Node, tmp_path: Path) -> None:
        with pytest.raises(errors.GridctlError) as caught:
            owner.tensors.upload(tmp_path / "nope.npy", name=word())
        assert caught.value.code == "usage"

    def test_something_that_is_not_a_tensor_is_a_usage_error(self, owner: Node) -> None:
        with pytest.raises(errors.GridctlError, match="file path or a tensor") as caught:
            owner.tensors.upload(object(), name=word())
        assert caught.value.code == "usage"

    def test_needs_upload_data(self, scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        with pytest.raises(errors.Forbidden):
            node.tensors.upload(torch.zeros(2), name=word())


class TestPointers:
    def test_indexing_gives_a_pointer_with_your_level(self, owner: Node, scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        created = owner.tensors.upload(torch.zeros(2, 2), name=word())
        pointer = node.tensors[created.id]
        assert pointer == created
        assert pointer.level == "search" and not pointer.can_download
        assert f"<TensorPointer {created.id} " in repr(pointer) and "your level: search" in repr(pointer)

    def test_an_unknown_id_raises_not_found(self, owner: Node) -> None:
        with pytest.raises(errors.NotFound):
            owner.tensors[99_999_999]

    def test_tags_visibility_and_delete_through_the_pointer(self, owner: Node) -> None:
        pointer = owner.tensors.upload(torch.zeros(3), name=word())
        assert pointer.tag("alpha", "beta").tags == ["alpha", "beta"]
        assert pointer.untag("alpha").tags == ["beta"]
        assert pointer.update(visibility="public", description="now public").visibility == "public"
        assert pointer.refresh().description == "now public"
        pointer.delete()
        with pytest.raises(errors.NotFound):
            pointer.refresh()


class TestSearch:
    def test_finds_by_text_and_returns_pointers_with_levels(self, owner: Node,
                                                           scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        key = word()
        private = owner.tensors.upload(torch.zeros(2), name=f"{key}-private", description=f"about {key}")
        public = owner.tensors.upload(torch.zeros(2), name=f"{key}-public", visibility="public")
        results = node.search(key)
        assert isinstance(results, SearchResults) and results.total == 2
        levels = {p.id: p.level for p in results}
        assert levels == {private.id: "search", public.id: "download"}

    def test_filters_by_tags_all_or_any_and_by_dtype_and_visibility(self, owner: Node) -> None:
        a, b = word(), word()
        both = owner.tensors.upload(torch.zeros(2), name=word(), tags=[a, b])
        only_a = owner.tensors.upload(torch.zeros(2, dtype=torch.int64), name=word(), tags=[a],
                                      visibility="public")
        assert [p.id for p in owner.search(tags=[a, b])] == [both.id]
        assert {p.id for p in owner.search(tags=[a, b], any_tag=True)} == {both.id, only_a.id}
        assert [p.id for p in owner.search(tags=[a], dtype="int64")] == [only_a.id]
        assert [p.id for p in owner.search(tags=[a], visibility="private")] == [both.id]

    def test_pages_with_limit_and_offset(self, owner: Node) -> None:
        tag = word()
        for _ in range(3):
            owner.tensors.upload(torch.zeros(1), name=word(), tags=[tag])
        first = owner.search(tags=[tag], limit=2)
        second = owner.search(tags=[tag], limit=2, offset=2)
        assert (len(first), len(second), first.total) == (2, 1, 3)
        assert not {p.id for p in first} & {p.id for p in second}


class TestGet:
    def test_without_download_level_names_the_level_and_how_to_ask(self, owner: Node,
                                                                  scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        pointer = node.tensors[owner.tensors.upload(torch.zeros(2), name=word()).id]
        with pytest.raises(AccessDenied) as caught:
            pointer.get()
        denied = caught.value
        assert isinstance(denied, errors.Forbidden) and denied.status == 403
        assert (denied.needed, denied.have, denied.rule) == ("download", "search", "visibility")
        assert "needs download" in denied.message and "request_access" in denied.message

    def test_after_a_grant_returns_the_exact_tensor(self, owner: Node, scientist: tuple[dict, Node]) -> None:
        user, node = scientist
        original = torch.arange(24, dtype=torch.int16).reshape(2, 3, 4)
        created = owner.tensors.upload(original, name=word())
        owner.permissions.grant("download", user=user["email"], tensor=created)
        fetched = node.tensors[created.id].get()
        assert fetched.dtype == torch.int16 and torch.equal(fetched, original)

    def test_a_corrupted_blob_is_refused_and_nothing_is_kept(self, owner: Node, live_node: LiveNode,
                                                             tmp_path: Path) -> None:
        unique = torch.randn(64)  # no other tensor shares the blob
        pointer = owner.tensors.upload(unique, name=word(), visibility="public")
        blob = stored_blob(live_node, pointer.sha256)
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF
        blob.write_bytes(bytes(data))
        with pytest.raises(ChecksumMismatch, match="sha256"):
            pointer.download(tmp_path / "out.safetensors")
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(ChecksumMismatch):
            pointer.get()

    def test_download_into_a_folder_uses_the_tensors_name(self, owner: Node, tmp_path: Path) -> None:
        name = word()
        pointer = owner.tensors.upload(torch.ones(2), name=name, visibility="public")
        assert owner.tensors.download(pointer.id, tmp_path) == tmp_path / f"{name}.safetensors"


class TestDatasets:
    def test_create_from_pointers_and_index_by_name_and_role(self, owner: Node) -> None:
        features = owner.tensors.upload(torch.zeros(10, 3), name=word())
        labels = owner.tensors.upload(torch.zeros(10, dtype=torch.int64), name=word())
        name = word()
        created = owner.datasets.create(name, {"features": features, "labels": labels.id}, tags=["sdk"],
                                        description="ten rows")
        dataset = owner.datasets[name]
        assert isinstance(dataset, DatasetPointer) and dataset.id == created.id
        assert sorted(dataset.roles) == ["features", "labels"]
        assert dataset["labels"] == labels
        with pytest.raises(KeyError, match="no member 'weights'"):
            dataset["weights"]
        assert owner.datasets[str(created.id)].name == name

    def test_from_csv_makes_features_and_labels(self, owner: Node, tmp_path: Path) -> None:
        csv = tmp_path / "rows.csv"
        csv.write_text("age,height,label\n30,1.8,1\n40,1.6,0\n50,1.7,1\n")
        dataset = owner.datasets.create_from_csv(csv, word(), label="label", tags=["csv"])
        assert dataset.roles == ["features", "labels"]
        assert dataset["features"].shape == [3, 2] and dataset["features"].columns == ["age", "height"]
        assert dataset["labels"].shape == [3]

    def test_members_bounds_and_delete(self, owner: Node) -> None:
        features = owner.tensors.upload(torch.zeros(4, 2), name=word())
        extra = owner.tensors.upload(torch.zeros(4), name=word())
        name = word()
        owner.datasets.create(name, {"features": features})
        assert [m["role"] for m in owner.datasets.add(name, "extra", extra)["members"]] == ["extra", "features"]
        assert [m["role"] for m in owner.datasets.remove_member(name, "extra")["members"]] == ["features"]
        bounded = owner.datasets.set_bounds(name, {"features": {"lower": [0, -1], "upper": [1, 1]}})
        assert bounded["bounds"] == {"features": {"lower": [0, -1], "upper": [1, 1]}}
        owner.datasets.remove(name)
        with pytest.raises(errors.NotFound):
            owner.datasets.get(name)
        assert owner.tensors.get(features.id)["id"] == features.id  # the tensors stay


class TestPermissions:
    def test_grant_explain_revoke_on_a_dataset_named_by_name(self, owner: Node,
                                                            scientist: tuple[dict, Node]) -> None:
        user, node = scientist
        member = owner.tensors.upload(torch.zeros(2), name=word())
        name = word()
        owner.datasets.create(name, {"x": member})
        grant = owner.permissions.grant("compute", user=user["email"], dataset=name)
        assert (grant["target_type"], grant["level"], grant["subject_name"]) == ("dataset", "compute", user["email"])
        assert node.tensors[member.id].explain()["rule"] == "user_on_dataset"
        assert node.tensors[member.id].level == "compute"
        assert owner.permissions.find(user=user["email"], dataset=name)["id"] == grant["id"]
        owner.permissions.revoke(user=user["email"], dataset=name)
        explained = node.permissions.explain(tensor=member.id)
        assert (explained["level"], explained["rule"]) == ("search", "visibility")

    def test_a_group_grant_and_listing_by_target(self, owner: Node, scientist: tuple[dict, Node]) -> None:
        user, node = scientist
        group = owner.groups.create(word())
        owner.groups.add_member(group["name"], user["email"])
        tensor = owner.tensors.upload(torch.zeros(2), name=word())
        uploaders = owner.permissions.list(tensor=tensor.id)  # the uploader's own grant, made at upload
        assert [(g["subject_type"], g["level"]) for g in uploaders] == [("user", "download")]
        grant = owner.permissions.grant("download", group=group["name"], tensor=tensor.id)
        assert [g["id"] for g in owner.permissions.list(tensor=tensor.id)] == [uploaders[0]["id"], grant["id"]]
        assert node.permissions.explain(tensor=tensor.id)["rule"] == "group_on_tensor"
        owner.permissions.revoke(grant["id"])
        assert owner.permissions.list(tensor=tensor.id) == uploaders

    def test_needs_exactly_one_subject_and_one_target(self, owner: Node) -> None:
        with pytest.raises(errors.GridctlError, match="exactly one subject"):
            owner.permissions.grant("download", tensor=1)
        with pytest.raises(errors.GridctlError, match="exactly one target"):
            owner.permissions.grant("download", user="x@example.com", tensor=1, dataset="d")

    def test_revoking_a_grant_that_does_not_exist_raises_not_found(self, owner: Node,
                                                                  scientist: tuple[dict, Node]) -> None:
        user, _ = scientist
        tensor = owner.tensors.upload(torch.zeros(2), name=word())
        with pytest.raises(errors.NotFound, match="no grant"):
            owner.permissions.revoke(user=user["email"], tensor=tensor.id)


class TestRequests:
    def test_request_access_returns_a_request_you_can_follow_and_withdraw(self, owner: Node,
                                                                         scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        tensor = node.tensors[owner.tensors.upload(torch.zeros(2), name=word()).id]
        request = tensor.request_access("compute", "to compute a mean")
        assert isinstance(request, Request)
        assert (request.status, request.kind, request.level, request.target_id) == ("pending", "access", "compute",
                                                                                    tensor.id)
        assert node.requests[request.id].reason == "to compute a mean"
        assert request.withdraw(note="not needed").status == "withdrawn"
        assert request.refresh().status == "withdrawn"
        assert [e["to_state"] for e in request.events] == ["pending", "withdrawn"]
        with pytest.raises(errors.Conflict, match="withdrawn"):
            request.withdraw()

    def test_dataset_request_and_listing_filters(self, owner: Node, scientist: tuple[dict, Node]) -> None:
        user, node = scientist
        name = word()
        owner.datasets.create(name, {"x": owner.tensors.upload(torch.zeros(2), name=word())})
        request = node.datasets[name].request_access("download", "whole dataset")
        assert request.target_type == "dataset"
        mine = node.requests.list(status="pending", kind="access")
        assert request.id in [r["id"] for r in mine]
        assert all(r["requester_email"] == user["email"] for r in mine)
        assert request.id in [r["id"] for r in owner.requests.list(requester=user["email"], status="pending")]
        assert owner.requests.list(requester=user["email"], status="approved") == []

    def test_asking_for_a_level_you_have_is_a_conflict(self, owner: Node, scientist: tuple[dict, Node]) -> None:
        _, node = scientist
        tensor = owner.tensors.upload(torch.zeros(2), name=word(), visibility="public")
        with pytest.raises(errors.Conflict, match="already have download"):
            node.tensors[tensor.id].request_access("download", "please")
