"""The Admin's Federated learning page in Chromium against a live Node: a process hosted and run one cycle through the
API (a client joins, downloads the checkpoint and reports an update, which closes the cycle) is listed with its
cycles, clients per cycle, minimum reports, central DP and ε; opened, it shows its model as a layer table, its
client and server configuration, the cycle's figures and both checkpoints (one downloaded with the bearer token, to
the API's bytes); a client token issued on the page is shown once, opens the client routes, and is refused (401)
once revoked; the process is stopped after a confirmation. A process is hosted from the page (spec and weights
file); a non-host sees no host actions, and a user without “Upload data” neither sees the page nor reads it."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import expect
from safetensors.numpy import load, save

from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, network_refusals_only, sign_in
from tests.admin.test_admin_operations import screenshot

SPEC: dict[str, Any] = {"format": "gridctl.model-spec/1", "input_shape": [4],
                        "layers": [{"type": "Linear", "in_features": 4, "out_features": 3}]}


def weights(value: float = 0.5) -> bytes:
    return save({"0.weight": np.full((3, 4), value, dtype=np.float32), "0.bias": np.zeros(3, dtype=np.float32)})


def host(admin_node: AdminNode, name: str, token: str | None = None) -> dict[str, Any]:
    body = {"name": name, "spec": SPEC, "initial_weights": base64.b64encode(weights()).decode(),
            "client": {"lr": 0.05, "epochs": 2, "batch_size": 8},
            "server": {"clients_per_cycle": 2, "min_reports": 1, "cycle_seconds": 600, "cycles": 3,
                       "dp": {"noise_multiplier": 1.5, "clip_norm": 1.0}}}
    response = admin_node.call("POST", "/fl/processes", token=token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_one_cycle(admin_node: AdminNode, name: str) -> None:
    """A client of ``name`` joins cycle 1, downloads its checkpoint and reports an update (1 report closes it)."""
    issued = admin_node.call("POST", f"/fl/processes/{name}/tokens", json={"name": "site-a"})
    assert issued.status_code == 201, issued.text
    client = issued.json()["token"]
    joined = admin_node.call("POST", "/fl/client/join", token=client)
    assert joined.status_code == 200 and joined.json()["cycle"] == 1, joined.text
    assert admin_node.call("GET", "/fl/client/checkpoint", token=client).status_code == 200
    update = save({"0.weight": np.full((3, 4), 0.01, dtype=np.float32), "0.bias": np.full(3, 0.01, dtype=np.float32)})
    reported = admin_node.call("POST", "/fl/client/report", token=client, content=update,
                               params={"cycle": 1, "examples": 20, "loss": 0.5})
    assert reported.status_code == 200, reported.text


def plan_status(admin_node: AdminNode, client_token: str) -> int:
    return admin_node.call("GET", "/fl/client/plan", token=client_token).status_code


class TestHostedProcess:
    def test_listed_opened_checkpoint_downloaded_client_token_issued_and_revoked_then_stopped(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        name = "admin-digits"
        made = host(admin_node, name)
        run_one_cycle(admin_node, name)
        detail = admin_node.call("GET", f"/fl/processes/{name}").json()
        assert [c["state"] for c in detail["cycles"]] == ["aggregated", "open"]
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Federated learning").click()
        row = page.get_by_test_id("processes").get_by_role("row").filter(has_text=name)
        eps = made["epsilon"]
        assert eps is not None and eps > 0
        expect(row).to_contain_text(re.compile(
            rf"{name}\s*running\s*1 / 3\s*2\s*1\s*noise 1\.5, clip 1\s*{eps:.3f}\s*you"))
        screenshot(page, "fl")

        page.get_by_role("link", name=f"Open process {name}").click()
        panel = page.get_by_role("region", name=f"Process {name}")
        expect(panel.get_by_test_id("process-state")).to_have_text("running")
        expect(panel.get_by_test_id("parameters-total")).to_have_text("15")  # 4*3 + 3
        expect(panel.get_by_test_id("layers")).to_contain_text("out_features=3")
        expect(panel.get_by_test_id("client-config")).to_contain_text(re.compile(r"lr\s*0\.05"))
        expect(panel.get_by_test_id("client-config")).to_contain_text(re.compile(r"epochs\s*2"))
        expect(panel.get_by_test_id("server-config")).to_contain_text(re.compile(r"clients per cycle\s*2"))
        expect(panel.get_by_test_id("server-config")).to_contain_text(re.compile(r"dp\s*noise 1\.5, clip 1"))
        expect(panel.get_by_test_id("process-facts")).to_contain_text(f"ε {eps:.3f} at δ")
        cycles = panel.get_by_test_id("cycles").locator("tbody tr")
        expect(cycles).to_have_count(2)
        expect(cycles.nth(0)).to_contain_text(re.compile(r"^1\s*aggregated\s*1\s*1\s*20\s*0\.5000.*node$"))
        expect(cycles.nth(1)).to_contain_text(re.compile(r"^2\s*open\s*0\s*0\s*0\s*—.*due"))

        checkpoints = admin_node.call("GET", f"/fl/processes/{name}/checkpoints").json()
        assert [c["number"] for c in checkpoints] == [0, 1]
        expect(panel.get_by_test_id("checkpoints").get_by_test_id("sha256")).to_have_text(
            [c["sha256"] for c in checkpoints])
        with page.expect_download() as download:
            panel.get_by_role("button", name="Download checkpoint 1").click()
        saved = download.value
        assert saved.suggested_filename == f"{name}-checkpoint-1.safetensors"
        served = admin_node.call("GET", f"/fl/processes/{name}/checkpoints/1").content
        assert Path(saved.path()).read_bytes() == served
        assert not np.array_equal(load(served)["0.weight"], load(weights())["0.weight"])  # the cycle moved it

        tokens = panel.get_by_role("region", name="Client tokens")
        tokens.get_by_label("Client's name").fill("site-b")
        tokens.get_by_role("button", name="Issue a token").click()
        expect(page.get_by_test_id("status")).to_have_text("Client token site-b issued.")
        secret = tokens.get_by_label("New client token").input_value()
        assert secret.startswith("gflclient_")
        tokens.get_by_role("button", name="Copy").click()
        expect(tokens.get_by_test_id("copied")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        plan = admin_node.call("GET", "/fl/client/plan", token=secret)
        assert plan.status_code == 200 and plan.json()["process"] == name and plan.json()["checkpoint"] == 1
        expect(tokens.get_by_test_id("client-tokens").locator("tbody tr")).to_have_count(2)
        screenshot(page, "fl-process")
        tokens.get_by_role("button", name="Revoke client token site-b").click()
        tokens.get_by_role("button", name="Yes, revoke").click()
        expect(page.get_by_test_id("status")).to_have_text("Client token site-b revoked.")
        expect(tokens.get_by_role("button", name="Revoke client token site-b")).to_have_count(0)
        assert plan_status(admin_node, secret) == 401

        page.get_by_role("button", name=f"Stop process {name}").click()
        page.get_by_role("button", name="Yes, stop").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Process {name} stopped.")
        expect(row).to_contain_text(re.compile(rf"{name}\s*stopped"))
        expect(panel.get_by_test_id("process-state")).to_have_text("stopped")
        expect(page.get_by_role("button", name=f"Stop process {name}")).to_have_count(0)
        assert admin_node.call("GET", f"/fl/processes/{name}").json()["state"] == "stopped"
        page.set_viewport_size({"width": 800, "height": 900})  # the open process at 800 px: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        tab.assert_no_errors()


class TestHostingFromThePage:
    def test_a_process_is_hosted_from_a_spec_and_a_weights_file(self, admin_node: AdminNode, open_tab: Any) -> None:
        name = "admin-hosted"
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/fl")
        form = page.get_by_role("form", name="Host a process")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Model spec (JSON)").fill("{not json")
        form.get_by_role("button", name="Host").click()
        expect(page.get_by_role("region", name="Host a process").get_by_role("alert")).to_have_text(
            "The model spec is not JSON.")
        form.get_by_label("Model spec (JSON)").fill(json.dumps(SPEC))
        form.get_by_label("Server configuration (JSON)").fill(json.dumps(
            {"clients_per_cycle": 1, "min_reports": 2, "cycle_seconds": 60, "cycles": 1}))
        form.get_by_role("button", name="Host").click()  # more reports than clients: the Node refuses (422)
        expect(page.get_by_role("region", name="Host a process").get_by_role("alert")).to_contain_text(
            "min_reports cannot exceed clients_per_cycle")
        assert name not in [p["name"] for p in admin_node.call("GET", "/fl/processes").json()]

        form.get_by_label("Server configuration (JSON)").fill(json.dumps(
            {"clients_per_cycle": 4, "min_reports": 2, "cycle_seconds": 60, "cycles": 5}))
        form.get_by_label("Initial weights (safetensors, optional)").set_input_files(
            files=[{"name": "initial.safetensors", "mimeType": "application/octet-stream", "buffer": weights(0.25)}])
        form.get_by_role("button", name="Host").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Process {name} hosted.")
        expect(page.get_by_test_id("processes").get_by_role("row").filter(has_text=name)).to_contain_text(
            re.compile(rf"{name}\s*running\s*0 / 5\s*4\s*2\s*none\s*not DP"))
        made = admin_node.call("GET", f"/fl/processes/{name}").json()
        assert made["server_config"]["cycles"] == 5 and made["parameter_count"] == 15
        initial = load(admin_node.call("GET", f"/fl/processes/{name}/checkpoints/0").content)
        assert np.array_equal(initial["0.weight"], np.full((3, 4), 0.25, dtype=np.float32))
        assert network_refusals_only(tab) == []


class TestWhoSeesIt:
    def test_a_non_host_reads_the_process_without_host_actions(self, admin_node: AdminNode, open_tab: Any) -> None:
        name = "admin-not-yours"
        host(admin_node, name)
        email = "fl-admin@example.com"
        admin_node.user(email, PASSWORD, role="Administrator")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", email, PASSWORD)
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Federated learning").click()
        page.get_by_role("link", name=f"Open process {name}").click()
        panel = page.get_by_role("region", name=f"Process {name}")
        expect(panel.get_by_test_id("process-state")).to_have_text("running")
        expect(panel.get_by_test_id("checkpoints").locator("tbody tr")).to_have_count(1)
        expect(panel).to_contain_text("Client tokens and checkpoint downloads are for the process's host.")
        expect(panel.get_by_role("button", name="Download checkpoint 0")).to_have_count(0)
        expect(page.get_by_role("button", name=f"Stop process {name}")).to_have_count(0)
        tab.assert_no_errors()

    def test_without_upload_data_the_page_is_not_offered_and_explains_the_refusal(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        email = "fl-scientist@example.com"
        admin_node.user(email, PASSWORD)
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", email, PASSWORD)
        page = tab.page
        nav = page.get_by_role("navigation", name="Pages")
        expect(nav.get_by_role("link", name="Account")).to_be_visible()
        expect(nav.get_by_role("link", name="Federated learning")).to_have_count(0)
        page.goto(f"{admin_node.url}/admin/#/fl")
        expect(page.get_by_role("alert").first).to_contain_text("it needs the capability “Upload data”")
        expect(page.get_by_test_id("processes")).to_have_count(0)
        assert network_refusals_only(tab) == []
