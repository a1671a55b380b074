"""The Admin's tensors and datasets page in Chromium against a live Node: a search paginated by the Node, a tensor's
detail (metadata only: its values never reach the page), its visibility, a permission granted and revoked in the
editor, and the Node's explain answer for a user (each checked through the API); a dataset's detail and its
visibility."""

from __future__ import annotations

import re
from typing import Any

import torch
from playwright.sync_api import expect

import gridctl
from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, sign_in
from tests.live import OWNER_EMAIL, OWNER_PASSWORD

SECRET_VALUE = 7345.125  # a value of the private tensor: the page must never show it


def grants_on(admin_node: AdminNode, target_type: str, target_id: int) -> list[tuple[str, str]]:
    page = admin_node.call("GET", "/permissions", params={"target_type": target_type, "target_id": target_id}).json()
    return sorted((g["subject_name"], g["level"]) for g in page["items"])


class TestData:
    def test_a_tensor_is_found_its_visibility_and_permissions_changed_and_a_level_explained(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        owner = gridctl.connect(admin_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
        for i in range(21):
            owner.tensors.upload(torch.zeros(2), name=f"filler-{i:02}", description="padding for the pager")
        scans = owner.tensors.upload(torch.full((3, 2), SECRET_VALUE), name="ward-scans", tags=["radiology"],
                                     description="the ward's scans")
        admin_node.call("POST", "/users", json={"email": "reader@example.com", "password": PASSWORD}
                        ).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Tensors and datasets").click()
        expect(page.get_by_role("heading", name="Tensors and datasets", level=1)).to_be_visible()
        total = admin_node.call("GET", "/tensors/search", params={"limit": 1}).json()["total"]
        expect(page.get_by_test_id("range")).to_have_text(f"(1–20 of {total})")
        page.get_by_role("link", name="Next").click()
        expect(page.get_by_test_id("range")).to_have_text(f"(21–{min(40, total)} of {total})")

        page.get_by_label("Search tensors").fill("ward")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_test_id("range")).to_have_text("(1–1 of 1)")
        row = page.get_by_test_id("items").locator("tbody tr")
        expect(row).to_have_text(re.compile(r"ward-scans\s*\[3, 2\] float32\s*private\s*radiology\s*download", re.I))
        page.get_by_role("link", name="Open tensor ward-scans").click()
        panel = page.get_by_role("region", name="Tensor ward-scans")
        expect(panel).to_contain_text("the ward's scans")
        expect(panel).to_contain_text("Metadata only")

        panel.get_by_label("Visibility", exact=True).select_option("public")
        panel.get_by_role("button", name="Save visibility").click()
        status = page.get_by_test_id("status")
        expect(status).to_have_text("ward-scans is now public.")
        assert admin_node.call("GET", f"/tensors/{scans.id}").json()["visibility"] == "public"
        panel.get_by_label("Visibility", exact=True).select_option("private")
        panel.get_by_role("button", name="Save visibility").click()
        expect(status).to_have_text("ward-scans is now private.")
        assert admin_node.call("GET", f"/tensors/{scans.id}").json()["visibility"] == "private"

        explain = panel.get_by_role("form", name="Explain a level")
        explain.get_by_label("User's email (empty: you)").fill("reader@example.com")
        panel.get_by_role("button", name="Explain").click()
        expect(panel.get_by_test_id("explained-level")).to_have_text("search")

        grant = panel.get_by_role("form", name="Grant a permission")
        grant.get_by_label("User's email or group's name").fill("reader@example.com")
        grant.get_by_label("Level").select_option("compute")
        grant.get_by_role("button", name="Grant").click()
        expect(status).to_have_text("Granted compute to user reader@example.com.")
        expect(panel.get_by_test_id("grants").locator("tbody tr")).to_contain_text(["user reader@example.com"])
        # (its uploader holds download on it from the upload)
        assert grants_on(admin_node, "tensor", scans.id) == [(OWNER_EMAIL, "download"),
                                                             ("reader@example.com", "compute")]

        panel.get_by_role("button", name="Explain").click()
        explained = panel.get_by_test_id("explained")
        expect(panel.get_by_test_id("explained-level")).to_have_text("compute")
        answer = admin_node.call("GET", "/permissions/explain", params={
            "target_type": "tensor", "target_id": scans.id, "user": "reader@example.com"}).json()
        assert (answer["level"], answer["rule"]) == ("compute", "user_on_tensor")
        expect(explained).to_contain_text(answer["explanation"])
        expect(explained).to_contain_text(f"user on tensor (grant {answer['grant_id']})")

        panel.get_by_role("button", name="Revoke compute of user reader@example.com").click()
        expect(status).to_have_text("Revoked compute of user reader@example.com.")
        expect(panel.get_by_test_id("grants").locator("tbody tr")).to_have_count(1)
        expect(panel.get_by_test_id("grants")).not_to_contain_text("reader@example.com")
        assert grants_on(admin_node, "tensor", scans.id) == [(OWNER_EMAIL, "download")]

        body = page.locator("body").inner_text()
        assert "7345" not in body and "7,345" not in body
        tab.assert_no_errors()

    def test_a_dataset_is_shown_with_its_members_and_its_visibility_changed(self, admin_node: AdminNode,
                                                                           open_tab: Any) -> None:
        owner = gridctl.connect(admin_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
        features = owner.tensors.upload(torch.zeros(4, 3), name="cohort-features")
        labels = owner.tensors.upload(torch.zeros(4), name="cohort-labels")
        dataset = owner.datasets.create("cohort", {"features": features, "labels": labels})
        tab = open_tab(width=800)
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/data?kind=dataset&q=cohort")
        expect(page.get_by_test_id("items").locator("tbody tr")).to_have_text(
            [re.compile(r"cohort\s*features, labels\s*private")])
        page.get_by_role("link", name="Open dataset cohort").click()
        panel = page.get_by_role("region", name="Dataset cohort")
        expect(panel).to_contain_text("features: cohort-features [4, 3]")
        panel.get_by_label("Visibility", exact=True).select_option("public")
        panel.get_by_role("button", name="Save visibility").click()
        expect(page.get_by_test_id("status")).to_have_text("cohort is now public.")
        assert admin_node.call("GET", f"/datasets/{dataset.id}").json()["visibility"] == "public"
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        tab.assert_no_errors()
