"""Access requests end to end against a real Node, through the CLI and through the SDK.

The story: an owner hosts a private tensor; a data scientist finds it (level ``search``), cannot get it (the
error names the missing level), asks for ``download`` with a reason; an officer (triage_requests) lists the
pending requests and approves or denies; the requester may withdraw; a decided request never changes again;
after approval the data scientist gets exactly the tensor that was uploaded.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import gridctl
from gridctl.sdk import errors
from gridctl.sdk.data import AccessDenied
from gridctl.sdk.node import Node
from tests.clitools import Gridctl, as_owner
from tests.live import LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"


def word() -> str:
    return f"e{secrets.token_hex(5)}"


@dataclass
class Person:
    email: str
    cli: Gridctl
    sdk: Node


@pytest.fixture
def owner_cli(live_node: LiveNode, tmp_path: Path) -> Gridctl:
    return as_owner(live_node, tmp_path / "owner-home")


def person(owner_cli: Gridctl, live_node: LiveNode, home: Path, role: str) -> Person:
    """A new user made with the admin CLI, logged in for the CLI and for the SDK."""
    email = f"e2e{next(_seq)}-{secrets.token_hex(3)}@example.com"
    owner_cli.json("users", "add", "--email", email, "--password", PASSWORD, "--role", role)
    token = live_node.login(email, PASSWORD)
    return Person(email, Gridctl(home=home, url=live_node.url, token=token),
                  gridctl.connect(live_node.url, token=token))


@pytest.fixture
def scientist(owner_cli: Gridctl, live_node: LiveNode, tmp_path: Path) -> Iterator[Person]:
    someone = person(owner_cli, live_node, tmp_path / "scientist-home", "Data Scientist")
    yield someone
    someone.sdk.close()


@pytest.fixture
def officer(owner_cli: Gridctl, live_node: LiveNode, tmp_path: Path) -> Iterator[Person]:
    someone = person(owner_cli, live_node, tmp_path / "officer-home", "Compliance Officer")
    yield someone
    someone.sdk.close()


@pytest.fixture
def owner_sdk(live_node: LiveNode) -> Iterator[Node]:
    with gridctl.connect(live_node.url, token=live_node.owner_token) as node:
        yield node


def host_private_tensor(owner_cli: Gridctl, tmp_path: Path, key: str) -> tuple[torch.Tensor, dict]:
    """The owner uploads a private tensor through the CLI; returns it and its metadata."""
    original = torch.randn(16, 4, dtype=torch.float32)
    path = tmp_path / f"{key}.safetensors"
    save_file({"cohort": original}, str(path))
    tensor = owner_cli.json("tensors", "upload", str(path), "--name", f"{key}-cohort", "--private",
                            "--description", f"patient cohort {key}", "--tag", "clinical")
    return original, tensor


class TestThroughTheCli:
    def test_search_ask_approve_download(self, owner_cli: Gridctl, scientist: Person, officer: Person,
                                         tmp_path: Path) -> None:
        key = word()
        original, tensor = host_private_tensor(owner_cli, tmp_path, key)
        ref = str(tensor["id"])

        hits = scientist.cli.json("tensors", "search", key, "--tag", "clinical")
        assert [(h["id"], h["level"]) for h in hits] == [(tensor["id"], "search")]

        out = tmp_path / "mine.safetensors"
        refused = scientist.cli("tensors", "download", ref, "--out", str(out))
        assert refused.exit_code == 4
        assert "needs download" in refused.stderr and "you have search" in refused.stderr
        assert not out.exists()

        request = scientist.cli.json("requests", "ask", "access", "--tensor", ref, "--level", "download",
                                     "--reason", "to reproduce the published baseline")
        assert (request["state"], request["kind"], request["payload"]["level"]) == ("pending", "access", "download")
        assert (request["target_type"], request["target_id"]) == ("tensor", tensor["id"])

        pending = officer.cli.json("requests", "list", "--status", "pending", "--kind", "access")
        assert request["id"] in [r["id"] for r in pending]
        table = officer.cli("requests", "list", "--status", "pending", "--requester", scientist.email)
        assert table.exit_code == 0 and f"tensor {tensor['name']}" in table.stdout and "download" in table.stdout

        refused = scientist.cli("requests", "approve", str(request["id"]))
        assert refused.exit_code == 4  # a data scientist cannot decide, not even their own request

        approved = officer.cli.json("requests", "approve", str(request["id"]), "--note", "fine for research")
        assert (approved["state"], approved["decision_note"]) == ("approved", "fine for research")

        second = officer.cli("requests", "deny", str(request["id"]), "--reason", "changed my mind")
        assert second.exit_code == 6
        assert "already approved" in second.stderr and len(second.stderr.strip().splitlines()) == 1

        saved = scientist.cli.json("tensors", "download", ref, "--out", str(out))
        assert saved["verified"] is True and saved["sha256"] == tensor["sha256"]
        assert hashlib.sha256(out.read_bytes()).hexdigest() == tensor["sha256"]
        assert torch.equal(next(iter(load_file(str(out)).values())), original)

        explained = scientist.cli.json("permissions", "explain", "--tensor", ref)
        assert (explained["level"], explained["rule"]) == ("download", "user_on_tensor")

        shown = scientist.cli.json("requests", "show", str(request["id"]))
        assert [(e["from_state"], e["to_state"]) for e in shown["events"]] == [(None, "pending"),
                                                                               ("pending", "approved")]
        history = scientist.cli("requests", "show", str(request["id"]))
        assert history.exit_code == 0 and "history" in history.stdout and "fine for research" in history.stdout

    def test_deny_with_a_reason_the_requester_reads(self, owner_cli: Gridctl, scientist: Person, officer: Person,
                                                    tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.cli.json("requests", "ask", "access", "--tensor", str(tensor["id"]), "--level",
                                     "compute", "--reason", "a mean")
        denied = officer.cli.json("requests", "deny", str(request["id"]), "--reason", "use the public sample")
        assert denied["state"] == "denied"
        seen = scientist.cli.json("requests", "show", str(request["id"]))
        assert (seen["state"], seen["decision_note"]) == ("denied", "use the public sample")
        assert scientist.cli("requests", "approve", str(request["id"])).exit_code == 4
        assert officer.cli("requests", "approve", str(request["id"])).exit_code == 6
        assert scientist.cli.json("permissions", "explain", "--tensor", str(tensor["id"]))["level"] == "search"

    def test_withdraw_then_no_decision_is_possible(self, owner_cli: Gridctl, scientist: Person, officer: Person,
                                                   tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.cli.json("requests", "ask", "access", "--tensor", str(tensor["id"]), "--level",
                                     "download", "--reason", "maybe later")
        withdrawn = scientist.cli.json("requests", "withdraw", str(request["id"]), "--note", "not needed")
        assert withdrawn["state"] == "withdrawn"
        refused = officer.cli("requests", "approve", str(request["id"]))
        assert refused.exit_code == 6 and "withdrawn" in refused.stderr
        assert officer.cli("requests", "withdraw", str(request["id"])).exit_code == 4  # only the requester may
        again = scientist.cli("requests", "withdraw", str(request["id"]))
        assert again.exit_code == 6 and "already withdrawn" in again.stderr
        assert [r["id"] for r in scientist.cli.json("requests", "list", "--status", "withdrawn")] == [request["id"]]

    def test_asking_on_a_dataset_by_name(self, owner_cli: Gridctl, scientist: Person, officer: Person,
                                         tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        dataset = word()
        owner_cli.json("datasets", "create", dataset, "--tensor", f"cohort={tensor['id']}")
        request = scientist.cli.json("requests", "ask", "access", "--dataset", dataset, "--level", "compute",
                                     "--reason", "statistics")
        assert request["target_type"] == "dataset"
        officer.cli.json("requests", "approve", str(request["id"]))
        explained = scientist.cli.json("permissions", "explain", "--tensor", str(tensor["id"]))
        assert (explained["level"], explained["rule"]) == ("compute", "user_on_dataset")

    def test_asking_twice_while_pending_is_a_conflict(self, owner_cli: Gridctl, scientist: Person,
                                                      tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        ask = ("requests", "ask", "access", "--tensor", str(tensor["id"]), "--level", "download", "--reason", "x")
        assert scientist.cli(*ask).exit_code == 0
        again = scientist.cli(*ask)
        assert again.exit_code == 6 and "pending" in again.stderr

    @pytest.mark.parametrize("args", [
        ["--level", "download", "--reason", "x"],  # no target
        ["--tensor", "1", "--dataset", "d", "--level", "download", "--reason", "x"],
        ["--tensor", "1", "--level", "search", "--reason", "x"],  # not a level one asks for
        ["--tensor", "1", "--level", "download"],  # no reason
    ])
    def test_ask_usage_errors(self, scientist: Person, args: list[str]) -> None:
        assert scientist.cli("requests", "ask", "access", *args).exit_code == 2

    def test_list_filters_by_kind_and_refuses_an_unknown_status(self, owner_cli: Gridctl, scientist: Person,
                                                                 officer: Person, tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.cli.json("requests", "ask", "access", "--tensor", str(tensor["id"]), "--level",
                                     "download", "--reason", "mine")
        assert request["id"] in [r["id"] for r in officer.cli.json("requests", "list", "--kind", "access")]
        assert request["id"] not in [r["id"] for r in officer.cli.json("requests", "list", "--kind", "release")]
        assert officer.cli("requests", "list", "--status", "nonsense").exit_code == 2
        assert officer.cli("requests", "list", "--kind", "nonsense").exit_code == 2


class TestThroughTheSdk:
    def test_search_get_ask_deny_ask_approve_get(self, owner_cli: Gridctl, scientist: Person, officer: Person,
                                                 tmp_path: Path) -> None:
        key = word()
        original, tensor = host_private_tensor(owner_cli, tmp_path, key)

        (pointer,) = scientist.sdk.search(key)
        assert (pointer.id, pointer.level) == (tensor["id"], "search")
        with pytest.raises(AccessDenied) as caught:
            pointer.get()
        assert caught.value.needed == "download" and "needs download" in str(caught.value)

        first = pointer.request_access("download", "to train a baseline")
        assert first.status == "pending"
        pending = [r for r in officer.sdk.requests.list(status="pending", kind="access")
                   if r["requester_email"] == scientist.email]
        assert [r["id"] for r in pending] == [first.id]
        officer.sdk.requests[first.id].deny("too broad; ask for compute")
        assert first.refresh().status == "denied" and first.decision_note == "too broad; ask for compute"
        with pytest.raises(AccessDenied):
            pointer.get()
        with pytest.raises(errors.Conflict, match="already denied") as conflict:
            officer.sdk.requests.approve(first.id)
        assert conflict.value.status == 409

        second = pointer.request_access("download", "narrowed to one experiment")
        approved = officer.sdk.requests[second.id].approve("ok")
        assert approved.status == "approved"
        assert second.refresh().status == "approved"
        assert pointer.refresh().level == "download"
        fetched = pointer.get()
        assert fetched.dtype == original.dtype and torch.equal(fetched, original)

    def test_withdraw_and_a_second_decision_is_refused(self, owner_cli: Gridctl, scientist: Person,
                                                       officer: Person, tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.sdk.tensors[tensor["id"]].request_access("compute", "a histogram")
        assert request.withdraw().status == "withdrawn"
        with pytest.raises(errors.Conflict, match="withdrawn"):
            officer.sdk.requests.deny(request.id, "too late")
        with pytest.raises(errors.Conflict):
            request.withdraw()
        assert officer.sdk.requests[request.id].status == "withdrawn"

    def test_officer_sees_the_request_but_a_stranger_does_not(self, owner_cli: Gridctl, live_node: LiveNode,
                                                              scientist: Person, officer: Person,
                                                              tmp_path: Path) -> None:
        _, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.sdk.tensors[tensor["id"]].request_access("download", "mine")
        assert officer.sdk.requests[request.id].reason == "mine"
        stranger = person(owner_cli, live_node, tmp_path / "stranger", "Data Scientist")
        with stranger.sdk:
            with pytest.raises(errors.NotFound):  # to a stranger it does not exist (issue 11)
                stranger.sdk.requests[request.id]
            with pytest.raises(errors.Forbidden):
                stranger.sdk.requests.approve(request.id)
            assert request.id not in [r["id"] for r in stranger.sdk.requests.list()]

    def test_the_owner_approves_through_the_sdk_too(self, owner_cli: Gridctl, owner_sdk: Node, scientist: Person,
                                                    tmp_path: Path) -> None:
        original, tensor = host_private_tensor(owner_cli, tmp_path, word())
        request = scientist.sdk.requests.ask_access(tensor=tensor["id"], level="download", reason="owner decides")
        owner_sdk.requests.approve(request.id, note="yes")
        assert torch.equal(scientist.sdk.tensors[tensor["id"]].get(), original)
