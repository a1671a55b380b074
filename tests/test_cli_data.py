"""``gridctl tensors``, ``datasets`` and ``permissions`` against a real Node (requests: test_access_requests_e2e)."""

from __future__ import annotations

import hashlib
import io
import itertools
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from gridctl.cli import console
from tests.clitools import Gridctl, as_owner
from tests.live import OWNER_EMAIL, LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"
TENSOR_KEYS = {"id", "name", "description", "shape", "dtype", "size_bytes", "sha256", "visibility", "tags",
               "columns", "uploader_id", "created_at", "level"}


def word() -> str:
    return f"c{secrets.token_hex(5)}"


@pytest.fixture
def owner(live_node: LiveNode, tmp_path: Path) -> Gridctl:
    return as_owner(live_node, tmp_path / "owner-home")


@pytest.fixture
def scientist(owner: Gridctl, live_node: LiveNode, tmp_path: Path) -> tuple[str, Gridctl]:
    email = f"cli-data{next(_seq)}-{secrets.token_hex(3)}@example.com"
    owner.json("users", "add", "--email", email, "--password", PASSWORD)
    return email, Gridctl(home=tmp_path / "scientist-home", url=live_node.url, token=live_node.login(email, PASSWORD))


def npy(tmp_path: Path, array: np.ndarray | None = None) -> Path:
    path = tmp_path / f"{word()}.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4) if array is None else array, allow_pickle=False)
    return path


def upload(gridctl: Gridctl, tmp_path: Path, *args: str, name: str | None = None) -> dict[str, Any]:
    return gridctl.json("tensors", "upload", str(npy(tmp_path)), "--name", name or word(), *args)


def one_line_error(stderr: str) -> bool:
    return stderr.startswith("error:") and len(stderr.strip().splitlines()) == 1


def stored_blob(live_node: LiveNode, sha256: str) -> Path:
    """The one file in the live Node's object store that holds the bytes with this sha256."""
    found = [path for path in live_node.state_dir.rglob("*.safetensors")
             if hashlib.sha256(path.read_bytes()).hexdigest() == sha256]
    assert len(found) == 1, f"expected one stored blob with sha256 {sha256}, found {len(found)}"
    return found[0]


class TestTensorsUpload:
    def test_prints_the_new_tensor_with_its_id_in_json(self, owner: Gridctl, tmp_path: Path) -> None:
        name = word()
        tensor = owner.json("tensors", "upload", str(npy(tmp_path)), "--name", name, "--tag", "a", "--tag", "b,c",
                            "--public", "--description", "twelve floats")
        assert set(tensor) == TENSOR_KEYS and isinstance(tensor["id"], int)
        assert (tensor["name"], tensor["shape"], tensor["dtype"]) == (name, [3, 4], "float32")
        assert (tensor["tags"], tensor["visibility"], tensor["description"]) == (["a", "b", "c"], "public",
                                                                               "twelve floats")
        assert len(tensor["sha256"]) == 64

    def test_table_mode_says_what_was_uploaded(self, owner: Gridctl, tmp_path: Path) -> None:
        name = word()
        result = owner("tensors", "upload", str(npy(tmp_path)), "--name", name)
        assert result.exit_code == 0, result.stderr
        assert f"'{name}' uploaded (float32" in result.stderr and "private" in result.stderr
        assert name in result.stdout and "3x4" in result.stdout

    def test_is_private_by_default(self, owner: Gridctl, tmp_path: Path) -> None:
        assert upload(owner, tmp_path)["visibility"] == "private"

    def test_into_a_dataset_under_a_role(self, owner: Gridctl, tmp_path: Path) -> None:
        first = upload(owner, tmp_path)
        dataset = word()
        owner.json("datasets", "create", dataset, "--tensor", f"features={first['id']}")
        second = upload(owner, tmp_path, "--dataset", dataset, "--role", "labels")
        members = owner.json("datasets", "show", dataset)["members"]
        assert [(m["role"], m["tensor_id"]) for m in members] == [("features", first["id"]), ("labels", second["id"])]

    def test_a_missing_file_is_a_usage_error(self, owner: Gridctl, tmp_path: Path) -> None:
        result = owner("tensors", "upload", str(tmp_path / "nope.npy"), "--name", "x")
        assert result.exit_code == 2

    def test_a_malformed_file_is_refused_in_one_line(self, owner: Gridctl, tmp_path: Path) -> None:
        path = tmp_path / "broken.npy"
        path.write_bytes(b"garbage, not numpy")
        result = owner("tensors", "upload", str(path), "--name", word())
        assert result.exit_code == 7  # invalid input, from the 422's status
        assert one_line_error(result.stderr) and "npy" in result.stderr.lower()

    def test_a_data_scientist_cannot_upload_exit_4(self, scientist: tuple[str, Gridctl], tmp_path: Path) -> None:
        _, gridctl = scientist
        result = gridctl("tensors", "upload", str(npy(tmp_path)), "--name", word())
        assert result.exit_code == 4 and one_line_error(result.stderr)


class TestTensorsSearchListShow:
    def test_search_shows_each_hits_level(self, owner: Gridctl, scientist: tuple[str, Gridctl],
                                          tmp_path: Path) -> None:
        _, gridctl = scientist
        key = word()
        private = upload(owner, tmp_path, "--description", f"private {key}")
        public = upload(owner, tmp_path, "--description", f"public {key}", "--public")
        hits = gridctl.json("tensors", "search", key)
        assert {h["id"]: h["level"] for h in hits} == {private["id"]: "search", public["id"]: "download"}
        table = gridctl("tensors", "search", key)
        assert table.exit_code == 0 and "level" in table.stdout
        assert "search" in table.stdout and "download" in table.stdout

    def test_search_filters_tags_all_or_any_dtype_visibility(self, owner: Gridctl, tmp_path: Path) -> None:
        a, b = word(), word()
        both = upload(owner, tmp_path, "--tag", f"{a},{b}")
        only_a = owner.json("tensors", "upload", str(npy(tmp_path, np.zeros(3, dtype=np.int64))), "--name", word(),
                            "--tag", a, "--public")

        def ids(*args: str) -> list[int]:
            return sorted(t["id"] for t in owner.json("tensors", "search", *args))

        assert ids("--tag", a, "--tag", b) == [both["id"]]
        assert ids("--tag", a, "--tag", b, "--any-tag") == sorted([both["id"], only_a["id"]])
        assert ids("--tag", a, "--dtype", "int64") == [only_a["id"]]
        assert ids("--tag", a, "--visibility", "private") == [both["id"]]
        assert ids("--tag", a, "--shape", "3,4") == [both["id"]]

    def test_search_pages_and_notes_the_rest(self, owner: Gridctl, tmp_path: Path) -> None:
        tag = word()
        for _ in range(3):
            upload(owner, tmp_path, "--tag", tag)
        assert len(owner.json("tensors", "search", "--tag", tag, "--limit", "2", "--offset", "2")) == 1
        result = owner("tensors", "search", "--tag", tag, "--limit", "2")
        assert "rows 1-2 of 3" in result.stderr

    def test_search_in_a_dataset(self, owner: Gridctl, tmp_path: Path) -> None:
        inside, _ = upload(owner, tmp_path), upload(owner, tmp_path)
        dataset = word()
        owner.json("datasets", "create", dataset, "--tensor", f"x={inside['id']}")
        assert [t["id"] for t in owner.json("tensors", "search", "--dataset", dataset)] == [inside["id"]]

    def test_an_invalid_visibility_is_a_usage_error(self, owner: Gridctl) -> None:
        assert owner("tensors", "search", "--visibility", "secret").exit_code == 2

    def test_list_filters_by_tag_newest_first(self, owner: Gridctl, tmp_path: Path) -> None:
        tag = word()
        first, second = upload(owner, tmp_path, "--tag", tag), upload(owner, tmp_path, "--tag", tag)
        assert [t["id"] for t in owner.json("tensors", "list", "--tag", tag)] == [second["id"], first["id"]]
        assert [t["id"] for t in owner.json("tensors", "list", "--tag", tag, "--sort", "created_at")] == [
            first["id"], second["id"]]

    def test_show_and_show_unknown_exits_5(self, owner: Gridctl, tmp_path: Path) -> None:
        tensor = upload(owner, tmp_path)
        assert owner.json("tensors", "show", str(tensor["id"])) == tensor
        result = owner("tensors", "show", "99999999")
        assert result.exit_code == 5 and one_line_error(result.stderr)


class TestTensorsEdit:
    def test_tag_untag_and_set_visibility(self, owner: Gridctl, tmp_path: Path) -> None:
        tensor = upload(owner, tmp_path)
        ref = str(tensor["id"])
        assert owner.json("tensors", "tag", ref, "x", "y")["tags"] == ["x", "y"]
        assert owner.json("tensors", "untag", ref, "x")["tags"] == ["y"]
        assert owner.json("tensors", "set-visibility", ref, "public")["visibility"] == "public"
        assert owner("tensors", "set-visibility", ref, "secret").exit_code == 2

    def test_someone_elses_tensor_cannot_be_changed_exit_4(self, owner: Gridctl, scientist: tuple[str, Gridctl],
                                                           tmp_path: Path) -> None:
        _, gridctl = scientist
        tensor = upload(owner, tmp_path)
        result = gridctl("tensors", "tag", str(tensor["id"]), "mine")
        assert result.exit_code == 4 and "uploader" in result.stderr

    def test_delete_needs_yes_without_a_terminal(self, owner: Gridctl, tmp_path: Path) -> None:
        ref = str(upload(owner, tmp_path)["id"])
        assert owner("tensors", "delete", ref).exit_code == 2
        assert owner.json("tensors", "delete", ref, "--yes") == {"removed": "tensor", "ref": ref}
        assert owner("tensors", "show", ref).exit_code == 5


class TestTensorsDownload:
    def test_round_trip_is_verified_bit_for_bit(self, owner: Gridctl, tmp_path: Path) -> None:
        original = torch.randn(8, 5, dtype=torch.float64)
        source = tmp_path / "source.safetensors"
        save_file({"t": original}, str(source))
        tensor = owner.json("tensors", "upload", str(source), "--name", word(), "--public")
        out = tmp_path / "copy.safetensors"
        saved = owner.json("tensors", "download", str(tensor["id"]), "--out", str(out))
        assert saved == {"id": tensor["id"], "name": tensor["name"], "path": str(out), "sha256": tensor["sha256"],
                         "size_bytes": tensor["size_bytes"], "verified": True}
        assert hashlib.sha256(out.read_bytes()).hexdigest() == tensor["sha256"]
        assert torch.equal(next(iter(load_file(str(out)).values())), original)

    def test_table_mode_reports_the_verified_path(self, owner: Gridctl, tmp_path: Path) -> None:
        tensor = upload(owner, tmp_path, "--public")
        result = owner("tensors", "download", str(tensor["id"]), "--out", str(tmp_path / "t.safetensors"))
        assert result.exit_code == 0, result.stderr
        assert "sha256 verified" in result.stderr

    def test_into_a_folder_uses_the_tensors_name(self, owner: Gridctl, tmp_path: Path) -> None:
        tensor = upload(owner, tmp_path, "--public")
        folder = tmp_path / "downloads"
        folder.mkdir()
        saved = owner.json("tensors", "download", str(tensor["id"]), "--out", str(folder))
        assert saved["path"] == str(folder / f"{tensor['name']}.safetensors")

    def test_an_existing_file_is_kept_unless_forced(self, owner: Gridctl, tmp_path: Path) -> None:
        tensor = upload(owner, tmp_path, "--public")
        out = tmp_path / "exists.safetensors"
        out.write_bytes(b"keep me")
        refused = owner("tensors", "download", str(tensor["id"]), "--out", str(out))
        assert refused.exit_code == 6 and "--force" in refused.stderr
        assert out.read_bytes() == b"keep me"
        assert owner("tensors", "download", str(tensor["id"]), "--out", str(out), "--force").exit_code == 0
        assert hashlib.sha256(out.read_bytes()).hexdigest() == tensor["sha256"]

    def test_without_download_level_exits_4_naming_it_and_writes_nothing(
            self, owner: Gridctl, scientist: tuple[str, Gridctl], tmp_path: Path) -> None:
        _, gridctl = scientist
        tensor = upload(owner, tmp_path)
        out = tmp_path / "dl" / "x.safetensors"
        out.parent.mkdir()
        result = gridctl("tensors", "download", str(tensor["id"]), "--out", str(out))
        assert result.exit_code == 4 and one_line_error(result.stderr)
        assert "needs download" in result.stderr and "you have search" in result.stderr
        assert list(out.parent.iterdir()) == []

    def test_a_corrupted_download_leaves_nothing_at_the_path(self, owner: Gridctl, live_node: LiveNode,
                                                             tmp_path: Path) -> None:
        unique = np.frombuffer(secrets.token_bytes(64), dtype=np.float32)  # no other tensor shares the blob
        tensor = owner.json("tensors", "upload", str(npy(tmp_path, unique)), "--name", word(), "--public")
        blob = stored_blob(live_node, tensor["sha256"])
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0x01
        blob.write_bytes(bytes(data))
        folder = tmp_path / "dl"
        folder.mkdir()
        result = owner("tensors", "download", str(tensor["id"]), "--out", str(folder / "x.safetensors"))
        assert result.exit_code == 1 and one_line_error(result.stderr)
        assert "sha256" in result.stderr and "nothing was written" in result.stderr
        assert list(folder.iterdir()) == []  # no file, no temporary left behind


class TestDatasets:
    def test_create_from_tensors(self, owner: Gridctl, tmp_path: Path) -> None:
        features, labels = upload(owner, tmp_path), upload(owner, tmp_path)
        name = word()
        dataset = owner.json("datasets", "create", name, "--tensor", f"features={features['id']}",
                             "--tensor", f"labels={labels['id']}", "--tag", "demo", "--description", "two members")
        assert (dataset["name"], dataset["tags"], dataset["visibility"]) == (name, ["demo"], "private")
        assert [(m["role"], m["tensor_id"]) for m in dataset["members"]] == [("features", features["id"]),
                                                                             ("labels", labels["id"])]
        table = owner("datasets", "show", name)
        assert f"features={features['id']}" in table.stdout

    def test_create_from_csv_with_a_label_column(self, owner: Gridctl, tmp_path: Path) -> None:
        csv = tmp_path / "patients.csv"
        csv.write_text("age,weight,outcome\n31,70.5,0\n45,80,1\n52,65.2,1\n28,90,0\n")
        dataset = owner.json("datasets", "create", word(), "--from-csv", str(csv), "--label", "outcome", "--public")
        members = {m["role"]: m for m in dataset["members"]}
        assert set(members) == {"features", "labels"} and dataset["visibility"] == "public"
        assert members["features"]["shape"] == [4, 2] and members["labels"]["shape"] == [4]
        features = owner.json("tensors", "show", str(members["features"]["tensor_id"]))
        assert features["columns"] == ["age", "weight"]

    def test_a_csv_without_the_label_column_is_refused(self, owner: Gridctl, tmp_path: Path) -> None:
        csv = tmp_path / "rows.csv"
        csv.write_text("a,b\n1,2\n")
        result = owner("datasets", "create", word(), "--from-csv", str(csv), "--label", "outcome")
        assert result.exit_code == 7 and one_line_error(result.stderr) and "outcome" in result.stderr

    @pytest.mark.parametrize("args", [
        [],  # no members at all
        ["--tensor", "features"],  # not ROLE=ID
        ["--tensor", "features=abc"],
        ["--tensor", "x=1", "--tensor", "x=2"],  # a role twice
        ["--label", "y"],  # --label without --from-csv
    ])
    def test_bad_member_options_are_usage_errors(self, owner: Gridctl, args: list[str]) -> None:
        assert owner("datasets", "create", word(), *args).exit_code == 2

    def test_from_csv_needs_a_label_and_no_tensors(self, owner: Gridctl, tmp_path: Path) -> None:
        csv = tmp_path / "rows.csv"
        csv.write_text("a,b\n1,2\n")
        assert owner("datasets", "create", word(), "--from-csv", str(csv)).exit_code == 2
        assert owner("datasets", "create", word(), "--from-csv", str(csv), "--label", "b",
                     "--tensor", "x=1").exit_code == 2

    def test_list_show_add_remove_and_delete(self, owner: Gridctl, tmp_path: Path) -> None:
        first, second = upload(owner, tmp_path), upload(owner, tmp_path)
        name = word()
        owner.json("datasets", "create", name, "--tensor", f"features={first['id']}", "--tag", name)
        assert [d["name"] for d in owner.json("datasets", "list", "--search", name)] == [name]
        assert [d["name"] for d in owner.json("datasets", "list", "--tag", name)] == [name]
        added = owner.json("datasets", "add", name, "--tensor", f"extra={second['id']}")
        assert [m["role"] for m in added["members"]] == ["extra", "features"]
        removed = owner.json("datasets", "remove", name, "extra")
        assert [m["role"] for m in removed["members"]] == ["features"]
        assert owner("datasets", "delete", name).exit_code == 2
        assert owner.json("datasets", "delete", name, "--yes") == {"removed": "dataset", "ref": name}
        assert owner("datasets", "show", name).exit_code == 5
        assert owner("tensors", "show", str(first["id"])).exit_code == 0  # tensors stay

    def test_set_bounds_merges_unless_replace(self, owner: Gridctl, tmp_path: Path) -> None:
        features, labels = upload(owner, tmp_path), upload(owner, tmp_path)
        name = word()
        owner.json("datasets", "create", name, "--tensor", f"features={features['id']}",
                   "--tensor", f"labels={labels['id']}")
        bounds = owner.json("datasets", "set-bounds", name, "features=0,-1,0,0:1,1,10,255")["bounds"]
        assert bounds == {"features": {"lower": [0, -1, 0, 0], "upper": [1, 1, 10, 255]}}
        bounds = owner.json("datasets", "set-bounds", name, "labels=0:9")["bounds"]
        assert set(bounds) == {"features", "labels"} and bounds["labels"] == {"lower": 0, "upper": 9}
        bounds = owner.json("datasets", "set-bounds", name, "labels=-1:1", "--replace")["bounds"]
        assert bounds == {"labels": {"lower": -1, "upper": 1}}

    @pytest.mark.parametrize("spec", ["features", "features=0", "features=a:1", "=0:1"])
    def test_malformed_bounds_are_usage_errors(self, owner: Gridctl, spec: str) -> None:
        assert owner("datasets", "set-bounds", "whatever", spec).exit_code == 2

    def test_bounds_the_node_refuses_exit_7(self, owner: Gridctl, tmp_path: Path) -> None:
        name = word()
        owner.json("datasets", "create", name, "--tensor", f"features={upload(owner, tmp_path)['id']}")
        result = owner("datasets", "set-bounds", name, "features=1:0")
        assert result.exit_code == 7 and one_line_error(result.stderr)


class TestPermissions:
    def test_grant_explain_list_revoke_on_a_tensor(self, owner: Gridctl, scientist: tuple[str, Gridctl],
                                                   tmp_path: Path) -> None:
        email, gridctl = scientist
        tensor = upload(owner, tmp_path)
        ref = str(tensor["id"])
        grant = owner.json("permissions", "grant", "--user", email, "--tensor", ref, "--level", "download")
        assert (grant["subject_name"], grant["target_type"], grant["target_id"], grant["level"]) == (
            email, "tensor", tensor["id"], "download")
        explained = gridctl.json("permissions", "explain", "--tensor", ref)
        assert (explained["level"], explained["rule"], explained["grant_id"]) == ("download", "user_on_tensor",
                                                                                  grant["id"])
        listed = owner.json("permissions", "list", "--tensor", ref)
        # the uploader's own download grant, made at upload, and the new one
        assert sorted((g["subject_name"], g["level"]) for g in listed) == sorted(
            [(email, "download"), (OWNER_EMAIL, "download")])
        assert [g["id"] for g in gridctl.json("permissions", "list")] == [grant["id"]]
        assert owner.json("permissions", "revoke", "--user", email, "--tensor", ref) == {
            "removed": "grant", "ref": str(grant["id"])}
        explained = gridctl.json("permissions", "explain", "--tensor", ref)
        assert (explained["level"], explained["rule"]) == ("search", "visibility")

    def test_group_deny_on_a_dataset_named_by_name_and_revoke_by_id(
            self, owner: Gridctl, scientist: tuple[str, Gridctl], tmp_path: Path) -> None:
        email, _ = scientist
        group = word()
        owner.json("groups", "add", group)
        owner.json("groups", "add-member", group, email)
        tensor = upload(owner, tmp_path, "--public")
        dataset = word()
        owner.json("datasets", "create", dataset, "--tensor", f"x={tensor['id']}", "--public")
        grant = owner.json("permissions", "grant", "--group", group, "--dataset", dataset, "--level", "deny")
        explained = owner.json("permissions", "explain", "--tensor", str(tensor["id"]), "--user", email)
        assert (explained["level"], explained["rule"]) == ("deny", "group_on_dataset")
        table = owner("permissions", "explain", "--tensor", str(tensor["id"]), "--user", email)
        assert "group_on_dataset" in table.stdout
        owner.json("permissions", "revoke", str(grant["id"]))
        explained = owner.json("permissions", "explain", "--tensor", str(tensor["id"]), "--user", email)
        assert (explained["level"], explained["rule"]) == ("download", "visibility")

    def test_a_data_scientist_cannot_grant_exit_4(self, scientist: tuple[str, Gridctl], owner: Gridctl,
                                                  tmp_path: Path) -> None:
        email, gridctl = scientist
        tensor = upload(owner, tmp_path)
        result = gridctl("permissions", "grant", "--user", email, "--tensor", str(tensor["id"]), "--level",
                         "download")
        assert result.exit_code == 4 and one_line_error(result.stderr)

    @pytest.mark.parametrize("args", [
        ["--tensor", "1", "--level", "download"],  # no subject
        ["--user", "a@example.com", "--level", "download"],  # no target
        ["--user", "a@example.com", "--group", "g", "--tensor", "1", "--level", "download"],
        ["--user", "a@example.com", "--tensor", "1", "--dataset", "d", "--level", "download"],
        ["--user", "a@example.com", "--tensor", "1", "--level", "admin"],
    ])
    def test_grant_needs_one_subject_one_target_and_a_level(self, owner: Gridctl, args: list[str]) -> None:
        assert owner("permissions", "grant", *args).exit_code == 2

    def test_revoking_a_missing_grant_exits_5(self, owner: Gridctl, scientist: tuple[str, Gridctl],
                                              tmp_path: Path) -> None:
        email, _ = scientist
        tensor = upload(owner, tmp_path)
        result = owner("permissions", "revoke", "--user", email, "--tensor", str(tensor["id"]))
        assert result.exit_code == 5 and "no grant" in result.stderr
        assert owner("permissions", "revoke", "99999999").exit_code == 5


class TestProgressBars:
    def test_none_in_json_mode(self) -> None:
        console.set_output(console.Output.json)
        try:
            with console.transfer_progress("uploading") as progress:
                assert progress is None
        finally:
            console.set_output(console.Output.table)

    def test_none_when_stderr_is_not_a_terminal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(console._consoles, True, Console(file=io.StringIO(), force_terminal=False))
        with console.transfer_progress("uploading") as progress:
            assert progress is None

    def test_draws_a_bar_on_a_terminal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        buffer = io.StringIO()
        monkeypatch.setitem(console._consoles, True, Console(file=buffer, force_terminal=True, width=120))
        with console.transfer_progress("uploading numbers.npy") as progress:
            assert progress is not None
            progress(0, 2048)
            progress(2048, 2048)
        assert "uploading numbers.npy" in buffer.getvalue()
