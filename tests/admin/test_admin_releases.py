"""Release requests decided in the Admin (issue 13's Done-when): two finished training jobs and their results are
seeded straight into a live Node's database and object store (jobs need Ray; the rows are those a finished job
writes, as tests/test_release_requests.py's ``make_result`` does), the data scientist files a release of each
through the API, an officer approves one in Chromium (the fingerprint shown on its cost card) and denies the
other with a reason, and the scientist's SDK sees both decisions: the approved result downloads, the denied one
is refused. The officer's cost card shows the model spec as a layer table and the training metrics as a chart."""

from __future__ import annotations

import hashlib
import re
import tempfile
from typing import Any

import pytest
from playwright.sync_api import expect

from grid_runtime.core.database import create_database_engine, make_sessionmaker
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.privacy import events
from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, sign_in

SPEC = {"format": "gridctl.model-spec/1", "input_shape": [4],
        "layers": [{"type": "Linear", "in_features": 4, "out_features": 3}, {"type": "ReLU"},
                   {"type": "Linear", "in_features": 3, "out_features": 2}]}
METRICS = [{"epoch": 1, "loss": 0.9, "accuracy": 0.5}, {"epoch": 2, "loss": 0.6, "accuracy": 0.7}]


def seed_result(admin_node: AdminNode, owner_id: int, blob: bytes, *, sigma: float) -> int:
    """A finished DP training job of ``owner_id`` and its model result (its blob in the Node's object store),
    never charged at admission: approving its release charges it."""
    settings = NodeSettings(state_dir=admin_node.node.state_dir)
    event = events.event_to_dict(events.dp_sgd_event(sample_rate=0.02, noise_multiplier=sigma, steps=100))
    engine = create_database_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine).begin() as session:
            job = Job(kind="train", state="succeeded", owner_id=owner_id, dataset_id=None, inputs={}, spec=SPEC,
                      settings={"epochs": 2, "batch_size": 8, "dp": {"noise_multiplier": sigma}},
                      planned_event=event, metrics=METRICS)
            session.add(job)
            session.flush()
            key = f"results/{job.id}.safetensors"
            result = Result(job_id=job.id, owner_id=owner_id, kind="model", object_key=key,
                             sha256=hashlib.sha256(blob).hexdigest(), size_bytes=len(blob), lineage={"inputs": {}},
                             event=event, epsilon=None, delta=1e-5)
            session.add(result)
            session.flush()
            result_id = int(result.id)
    finally:
        engine.dispose()
    store = ObjectStore(settings.resolved_object_store_url, settings.object_store_options)
    with tempfile.NamedTemporaryFile() as fh:
        fh.write(blob)
        fh.flush()
        store.put_file(key, fh.name)
    return result_id


def weights(value: float) -> bytes:
    import torch
    from safetensors.torch import save

    return save({"weight": torch.full((2, 4), value), "bias": torch.zeros(2)})


class TestReleases:
    def test_one_release_approved_with_its_fingerprint_and_another_denied_reach_the_sdk(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        import torch

        import gridctl
        from gridctl.sdk import releases
        from gridctl.sdk.errors import GridctlError

        email = "release-scientist@example.com"
        token = admin_node.user(email, PASSWORD)
        admin_node.call("PUT", f"/users/{email}/budget", json={"epsilon": 50.0}).raise_for_status()
        owner_id = int(admin_node.call("GET", f"/users/{email}").json()["id"])
        kept = seed_result(admin_node, owner_id, weights(0.25), sigma=1.0)
        refused = seed_result(admin_node, owner_id, weights(-1.0), sigma=1.1)
        filed = {}
        for name, result_id in (("kept", kept), ("refused", refused)):
            answer = admin_node.call("POST", "/requests", token=token,
                                     json={"kind": "release", "target_type": "result", "target_id": result_id,
                                           "reason": f"to evaluate the {name} model"})
            assert answer.status_code == 201, answer.text
            assert answer.json()["state"] == "pending"
            filed[name] = int(answer.json()["id"])
        card = admin_node.call("GET", f"/requests/{filed['kept']}").json()["card"]
        fingerprint = card["fingerprint"]
        assert len(fingerprint) == 64

        # At 800 px the card (its layer table and chart) fits without sideways scrolling.
        narrow = open_tab(width=800)
        sign_in(narrow, f"{admin_node.url}/admin/")
        narrow.page.goto(f"{admin_node.url}/admin/#/requests?id={filed['kept']}")
        expect(narrow.page.get_by_role("region", name="Model layers")).to_be_visible()
        expect(narrow.page.get_by_role("region", name="Training metrics").locator("canvas")).to_be_visible()
        assert narrow.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        narrow.assert_no_errors()

        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Requests").click()
        queue = page.get_by_test_id("requests")
        expect(queue.get_by_role("row").filter(has_text=f"release of result {kept}")).to_contain_text(email)
        expect(queue.get_by_role("row").filter(has_text=f"release of result {refused}")).to_contain_text(email)

        page.get_by_role("link", name=f"Open request {filed['kept']}").click()
        panel = page.get_by_role("region", name=f"Request {filed['kept']}")
        expect(panel).to_contain_text("to evaluate the kept model")
        cost = panel.get_by_role("region", name="Cost card")
        expect(cost).to_contain_text("DP-SGD: 100 steps")
        expect(cost).to_contain_text("no: charged on approval")
        # The model spec as a layer table (shapes and parameter counts from the Node) and the training metrics.
        layers = cost.get_by_role("region", name="Model layers").get_by_test_id("layers")
        expect(layers.locator("tbody tr")).to_have_text([
            re.compile(r"0\s*Linear\s*in_features=4, out_features=3\s*\[3\]\s*15"),
            re.compile(r"1\s*ReLU\s*—\s*\[3\]\s*0"),
            re.compile(r"2\s*Linear\s*in_features=3, out_features=2\s*\[2\]\s*8"),
        ])
        expect(layers.get_by_test_id("parameters-total")).to_have_text("23")
        metrics = cost.get_by_role("region", name="Training metrics")
        expect(metrics.locator("canvas")).to_be_visible()
        expect(metrics.locator("thead th")).to_have_text(["Epoch", "loss", "accuracy"])
        expect(metrics.locator("tbody tr")).to_have_text([re.compile(r"1\s*0\.9\s*0\.5"),
                                                         re.compile(r"2\s*0\.6\s*0\.7")])
        box = metrics.locator("canvas").bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] >= 150
        expect(panel.get_by_role("form", name="Approve")).to_contain_text(f"fingerprint {fingerprint[:16]}…")
        panel.get_by_label("Note for the requester (optional)").fill("evaluation only")
        panel.get_by_role("button", name="Approve").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Request {filed['kept']} approved.")
        expect(panel.get_by_test_id("request-state")).to_have_text("approved")

        page.get_by_role("link", name=f"Open request {filed['refused']}").click()
        panel = page.get_by_role("region", name=f"Request {filed['refused']}")
        expect(panel).to_contain_text("to evaluate the refused model")
        panel.get_by_label("Reason for denying (shown to the requester)").fill("memorises rare records")
        panel.get_by_role("button", name="Deny").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Request {filed['refused']} denied.")
        expect(panel.get_by_test_id("request-state")).to_have_text("denied")
        tab.assert_no_errors()

        # Through the API: the approval named the artifact (its fingerprint) and charged its cost.
        approved = admin_node.call("GET", f"/requests/{filed['kept']}").json()
        assert approved["state"] == "approved"
        assert approved["payload"]["fingerprint"] == fingerprint

        # What the data scientist's SDK sees.
        scientist = gridctl.connect(admin_node.url, email=email, password=PASSWORD)
        seen_kept = scientist.requests.get(filed["kept"])
        seen_refused = scientist.requests.get(filed["refused"])
        assert (seen_kept["state"], seen_kept["decision_note"]) == ("approved", "evaluation only")
        assert (seen_refused["state"], seen_refused["decision_note"]) == ("denied", "memorises rare records")
        assert "fingerprint" not in seen_kept["payload"]  # officers only
        assert card["user"]["epsilon_before"] == 0
        assert scientist.budget()["spent_epsilon"] == pytest.approx(card["user"]["epsilon_after"], rel=1e-6)

        released = scientist.results[kept].get()
        assert torch.equal(released["weight"], torch.full((2, 4), 0.25))
        with pytest.raises(GridctlError) as denied:
            releases.download(scientist.http, seen_refused)
        assert denied.value.status in (403, 409), denied.value
        assert str(filed["refused"]) in str(denied.value)
        with pytest.raises(GridctlError):  # nor the result itself
            scientist.http.get(f"/results/{refused}/data")
