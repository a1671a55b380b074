"""Release requests from the CLI and the SDK against a live Node: list/show (the cost card)/approve with a
fingerprint/deny for scripts, ``watch`` for officers, policies, ``Request.wait`` and ``get(wait=True)``."""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save
from sqlalchemy.orm import Session

from grid_runtime.core.database import create_database_engine, make_sessionmaker
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.jobs.models import Job, Result
from gridctl.sdk.errors import GridctlError
from gridctl.sdk.jobs import ResultPointer
from gridctl.sdk.node import Node
from gridctl.sdk.releases import ReleaseNotApproved
from tests.clitools import Gridctl
from tests.live import LiveNode
from tests.test_release_requests import SPEC, dp_event

PASSWORD = "release cli pw 1"
_seq = itertools.count(1)


class Scene:
    """A data scientist and an officer on the live Node, and a way to make finished results for them."""

    def __init__(self, live_node: LiveNode, home: Path) -> None:
        self.live = live_node
        self.owner = Node(live_node.url, token=live_node.owner_token)
        n = next(_seq)
        self.scientist_email = f"ds-release-{n}@example.com"
        self.owner.http.post("/users", json={"email": self.scientist_email, "password": PASSWORD,
                                             "budget_epsilon": 10.0})
        self.owner.http.post("/users", json={"email": f"officer-release-{n}@example.com", "password": PASSWORD,
                                             "role": "Compliance Officer"})
        self.scientist_token = live_node.login(self.scientist_email, PASSWORD)
        self.officer_token = live_node.login(f"officer-release-{n}@example.com", PASSWORD)
        self.scientist = Node(live_node.url, token=self.scientist_token)
        self.officer = Node(live_node.url, token=self.officer_token)
        self.scientist_id = int(self.scientist.http.get("/budget")["user_id"])
        self.cli_scientist = Gridctl(home=home / "ds", url=live_node.url, token=self.scientist_token)
        self.cli_officer = Gridctl(home=home / "officer", url=live_node.url, token=self.officer_token)

    def result(self, sigma: float = 1.0) -> ResultPointer:
        """A finished DP training job of the data scientist's, written into the live Node's state."""
        weights = {"0.weight": torch.randn(2, 4), "0.bias": torch.zeros(2)}
        blob = save(weights)
        engine = create_database_engine(f"sqlite:///{self.live.state_dir / 'node.db'}")
        try:
            with make_sessionmaker(engine).begin() as session:
                result_id = self._insert(session, blob, sigma)
        finally:
            engine.dispose()
        store = ObjectStore((self.live.state_dir / "objects").resolve().as_uri())
        with tempfile.NamedTemporaryFile() as fh:
            fh.write(blob)
            fh.flush()
            store.put_file(f"results/cli-{result_id}.safetensors", fh.name)
        return ResultPointer(self.scientist.http, self.scientist.http.get(f"/results/{result_id}"))

    def _insert(self, session: Session, blob: bytes, sigma: float) -> int:
        event = dp_event(sigma)
        job = Job(kind="train", state="succeeded", owner_id=self.scientist_id, inputs={}, spec=SPEC,
                  settings={"epochs": 2}, planned_event=event,
                  metrics=[{"epoch": 1, "loss": 1.2}, {"epoch": 2, "loss": 0.8}, {"epoch": 3, "loss": 0.5}])
        session.add(job)
        session.flush()
        result = Result(job_id=job.id, owner_id=self.scientist_id, kind="model", object_key="",
                        sha256=hashlib.sha256(blob).hexdigest(), size_bytes=len(blob),
                        lineage={"inputs": {"features": {"tensor_id": 999_999}}}, event=event, epsilon=None, delta=1e-5)
        session.add(result)
        session.flush()
        result.object_key = f"results/cli-{result.id}.safetensors"
        return result.id

    def release(self, result: ResultPointer) -> dict[str, Any]:
        request: dict[str, Any] = self.scientist.requests.ask_release(result=result.id).data
        return request


@pytest.fixture
def scene(live_node: LiveNode, tmp_path: Path) -> Scene:
    return Scene(live_node, tmp_path)


class TestCliForScripts:
    def test_lists_pending_releases_as_json(self, scene: Scene) -> None:
        request = scene.release(scene.result())
        listed = scene.cli_officer.json("requests", "list", "--status", "pending", "--kind", "release")
        assert request["id"] in [r["id"] for r in listed]
        assert all(r["kind"] == "release" and r["state"] == "pending" for r in listed)

    def test_approve_with_a_stale_fingerprint_fails_and_with_the_right_one_succeeds(self, scene: Scene) -> None:
        request = scene.release(scene.result())
        stale = scene.cli_officer("requests", "approve", str(request["id"]), "--fingerprint", "0" * 64)
        assert stale.exit_code != 0 and "fingerprint" in stale.stderr
        assert "fingerprint" not in request["payload"]  # the requester does not see it; the officer's card does
        fingerprint = scene.officer.http.get(f"/requests/{request['id']}")["card"]["fingerprint"]
        approved = scene.cli_officer.json("requests", "approve", str(request["id"]), "--fingerprint",
                                          fingerprint, "--note", "inspected")
        assert approved["state"] == "approved" and approved["decision_note"] == "inspected"

    def test_deny_takes_a_reason_the_requester_reads(self, scene: Scene) -> None:
        request = scene.release(scene.result())
        denied = scene.cli_officer.json("requests", "deny", str(request["id"]), "--reason", "train longer first")
        assert denied["state"] == "denied"
        mine = scene.cli_scientist.json("requests", "show", str(request["id"]))
        assert mine["decision_note"] == "train longer first" and mine["card"] is None

    def test_show_prints_the_cost_card_for_officers(self, scene: Scene) -> None:
        request = scene.release(scene.result())
        shown = scene.cli_officer("requests", "show", str(request["id"]))
        assert shown.exit_code == 0, shown.stderr
        text = shown.stdout + shown.stderr
        for expected in ("cost card", "DP-SGD", "hit rate", "Linear", "training metrics", "remaining ε"):
            assert expected in text, expected
        assert "█" in text and "▁" in text  # the loss curve as a small chart
        card = scene.cli_officer.json("requests", "show", str(request["id"]))["card"]
        assert card["layers"][0]["parameters"] == 10

    def test_the_requester_files_release_and_budget_requests(self, scene: Scene) -> None:
        result = scene.result()
        filed = scene.cli_scientist.json("requests", "ask", "release", "--result", str(result.id))
        assert filed["kind"] == "release" and filed["state"] == "pending"
        budget = scene.cli_scientist.json("requests", "ask", "budget", "--epsilon", "2", "--reason", "more runs")
        assert budget["kind"] == "budget" and budget["payload"]["additional_epsilon"] == 2


class TestWatch:
    def test_prints_new_pending_requests_as_they_arrive(self, scene: Scene) -> None:
        old = scene.release(scene.result())
        result = scene.result()
        filed: dict[str, Any] = {}

        def file_later() -> None:
            time.sleep(1.5)
            filed.update(scene.release(result))

        thread = threading.Thread(target=file_later)
        thread.start()
        try:
            watched = scene.cli_officer("requests", "watch", "--kind", "release", "--interval", "0.3",
                                        "--timeout", "5", "--output", "json")
        finally:
            thread.join()
        assert watched.exit_code == 0, watched.stderr
        ids = [json.loads(chunk)["id"] for chunk in _json_documents(watched.stdout)]
        assert ids == [filed["id"]] and old["id"] not in ids


def _json_documents(text: str) -> list[str]:
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        _, end = decoder.raw_decode(text, index)
        documents.append(text[index:end])
        index = end
    return documents


class TestPolicies:
    def test_officers_add_list_and_remove_policies(self, scene: Scene) -> None:
        added = scene.cli_officer.json("requests", "policies", "add", "--max-epsilon", "0.5", "--note", "tiny")
        assert added["max_epsilon"] == 0.5
        assert added["id"] in [p["id"] for p in scene.cli_officer.json("requests", "policies", "list")]
        cheap = scene.release(scene.result(sigma=4.0))
        assert cheap["state"] == "auto_approved"
        removed = scene.cli_officer("requests", "policies", "remove", str(added["id"]))
        assert removed.exit_code == 0, removed.stderr
        assert scene.release(scene.result(sigma=4.0))["state"] == "pending"


class TestSdkWaiting:
    def test_request_wait_returns_the_decision(self, scene: Scene) -> None:
        request = scene.scientist.requests.ask_release(result=scene.result().id)
        with pytest.raises(GridctlError) as timed_out:
            request.wait(timeout=0.5, poll=0.1)
        assert timed_out.value.code == "timeout"
        threading.Timer(1.0, lambda: scene.officer.requests.deny(request.id, "not now")).start()
        assert request.wait(timeout=20, poll=0.2).status == "denied"
        assert request.decision_note == "not now"

    def test_get_names_the_request_then_waits_for_the_approval(self, scene: Scene) -> None:
        result = scene.result()
        with pytest.raises(ReleaseNotApproved) as pending:
            result.get()
        assert pending.value.state == "pending"
        assert f"release request {pending.value.request_id}" in str(pending.value)
        request_id = pending.value.request_id
        threading.Timer(1.0, lambda: scene.officer.requests.approve(request_id)).start()
        weights = result.get(wait=True, timeout=30)
        assert set(weights) == {"0.weight", "0.bias"}
        # Nobody else downloads it, not even the officer who approved it.
        with pytest.raises(GridctlError) as refused:
            scene.officer.http.get(f"/releases/{request_id}/data")
        assert refused.value.status == 403
