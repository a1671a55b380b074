"""The Admin's settings page in Chromium against a live Node: the privacy settings (release policy, jobs without DP,
the largest ε of an auto-approve policy, the decision webhook) saved and read back through the API, a refused
webhook explained in words, a new signing secret shown once, δ shown read-only, a dataset's cap set; a role without
Edit settings sees them read-only."""

from __future__ import annotations

from typing import Any

import torch
from playwright.sync_api import expect

import gridctl
from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, sign_in
from tests.live import OWNER_EMAIL, OWNER_PASSWORD


class TestSettings:
    def test_the_privacy_settings_and_a_dataset_cap_are_changed(self, admin_node: AdminNode,
                                                                open_tab: Any) -> None:
        owner = gridctl.connect(admin_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
        tensor = owner.tensors.upload(torch.zeros(4, 2), name="capped-features")
        dataset = owner.datasets.create("capped", {"features": tensor})
        before = admin_node.call("GET", "/privacy/settings").json()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
        assert float(page.get_by_test_id("delta").inner_text()) == before["delta"]
        form = page.get_by_role("form", name="Privacy settings")
        expect(form.get_by_label("Release policy")).to_have_value(before["release_policy"])

        form.get_by_label("Decision webhook URL (empty: none)").fill("http://127.0.0.1:9/hook")
        form.get_by_role("button", name="Save privacy settings").click()
        expect(page.get_by_role("alert")).to_contain_text("https://")
        assert admin_node.call("GET", "/privacy/settings").json()["webhook_url"] is None

        form.get_by_label("Release policy").select_option("allow_non_private")
        form.get_by_label("Largest ε an auto-approve policy may name").fill("0.75")
        form.get_by_label("Decision webhook URL (empty: none)").fill("https://hooks.example.com/grid")
        form.get_by_role("button", name="Save privacy settings").click()
        status = page.get_by_test_id("status")
        expect(status).to_have_text("Privacy settings saved.")
        after = admin_node.call("GET", "/privacy/settings").json()
        assert (after["release_policy"], after["max_policy_epsilon"], after["webhook_url"]) == (
            "allow_non_private", 0.75, "https://hooks.example.com/grid")

        form.get_by_label("Decision webhook URL (empty: none)").fill("")
        form.get_by_role("button", name="Save privacy settings").click()
        expect(status).to_have_text("Privacy settings saved.")
        assert admin_node.call("GET", "/privacy/settings").json()["webhook_url"] is None

        page.get_by_role("button", name="New signing secret").click()
        expect(status).to_contain_text("shown once")
        assert len(page.get_by_label("New signing secret").input_value()) >= 16

        caps = page.get_by_role("form", name="Dataset cap")
        caps.get_by_label("Dataset").select_option(label="capped")
        expect(caps.get_by_test_id("cap-spent")).to_contain_text("cap none")
        caps.get_by_label("Cap (ε, empty: none)").fill("4.5")
        caps.get_by_role("button", name="Save cap").click()
        expect(status).to_have_text("capped is capped at ε 4.5.")
        expect(caps.get_by_test_id("cap-spent")).to_contain_text("cap ε 4.500")
        assert admin_node.call("GET", f"/budget/datasets/{dataset.id}").json()["cap_epsilon"] == 4.5
        assert [e for e in tab.errors if "status of 422" not in e] == []

    def test_a_role_without_edit_settings_sees_them_read_only(self, admin_node: AdminNode, open_tab: Any) -> None:
        admin_node.call("POST", "/roles", json={"name": "Budgeter", "capabilities": ["manage_budgets"]}
                        ).raise_for_status()
        admin_node.user("budgeter@example.com", PASSWORD, role="Budgeter")
        tab = open_tab(width=800)
        sign_in(tab, f"{admin_node.url}/admin/", "budgeter@example.com", PASSWORD)
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/settings")
        expect(page.get_by_test_id("read-only")).to_contain_text("“Edit settings”")
        expect(page.get_by_role("button", name="Save privacy settings")).to_be_disabled()
        expect(page.get_by_role("button", name="New signing secret")).to_have_count(0)
        expect(page.get_by_role("region", name="Dataset caps")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        tab.assert_no_errors()
