"""The Admin's groups page in Chromium against a live Node: create a group, add and remove members (checked through
the API), and the Node's rule that changing the members of a group carrying grants on data needs Manage permissions,
refused in words to a role with Manage groups alone."""

from __future__ import annotations

from typing import Any

import torch
from playwright.sync_api import expect

import gridctl
from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, sign_in
from tests.live import OWNER_EMAIL, OWNER_PASSWORD


def members(admin_node: AdminNode, group: str) -> list[str]:
    return sorted(m["email"] for m in admin_node.call("GET", f"/groups/{group}").json()["members"])


class TestGroups:
    def test_a_group_is_created_and_its_members_added_and_removed(self, admin_node: AdminNode,
                                                                 open_tab: Any) -> None:
        for name in ("ann", "ben"):
            admin_node.call("POST", "/users", json={"email": f"{name}-g@example.com", "password": PASSWORD}
                            ).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Groups").click()
        expect(page.get_by_role("heading", name="Groups", exact=True)).to_be_visible()
        form = page.get_by_role("region", name="Create a group")
        form.get_by_label("Name").fill("radiology")
        form.get_by_label("Description").fill("the radiology study")
        form.get_by_role("button", name="Create group").click()
        status = page.get_by_test_id("status")
        expect(status).to_have_text("Created the group radiology.")
        created = admin_node.call("GET", "/groups/radiology").json()
        assert (created["description"], created["members"]) == ("the radiology study", [])

        page.get_by_role("link", name="Open group radiology").click()
        panel = page.get_by_role("region", name="Group radiology")
        for email in ("ann-g@example.com", "ben-g@example.com"):
            panel.get_by_label("Member's email").fill(email)
            panel.get_by_role("button", name="Add member").click()
            expect(status).to_have_text(f"Added {email} to radiology.")
        expect(panel.get_by_test_id("members").locator("li")).to_have_count(2)
        assert members(admin_node, "radiology") == ["ann-g@example.com", "ben-g@example.com"]
        expect(page.get_by_test_id("groups").get_by_role("row").filter(has_text="radiology")).to_contain_text("2")

        panel.get_by_role("button", name="Remove ann-g@example.com from radiology").click()
        expect(status).to_have_text("Removed ann-g@example.com from radiology.")
        expect(panel.get_by_test_id("members").locator("li")).to_have_text(["ben-g@example.com Remove"])
        assert members(admin_node, "radiology") == ["ben-g@example.com"]

        page.get_by_label("Search by name").fill("radio")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_test_id("range")).to_have_text("(1–1 of 1)")
        tab.assert_no_errors()

    def test_changing_the_members_of_a_group_with_grants_needs_manage_permissions(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        admin_node.call("POST", "/roles", json={"name": "Group Keeper", "capabilities": ["manage_groups"]}
                        ).raise_for_status()
        admin_node.user("keeper@example.com", PASSWORD, role="Group Keeper")
        admin_node.call("POST", "/users", json={"email": "eve-g@example.com", "password": PASSWORD}
                        ).raise_for_status()
        for name in ("plain", "granted"):
            admin_node.call("POST", "/groups", json={"name": name}).raise_for_status()
        owner = gridctl.connect(admin_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
        tensor = owner.tensors.upload(torch.arange(6.0), name="scans", visibility="private")
        granted = admin_node.call("POST", "/permissions", json={"subject_type": "group", "subject": "granted",
                                                                "target_type": "tensor", "target_id": tensor.id,
                                                                "level": "compute"})
        assert granted.status_code == 201, granted.text

        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "keeper@example.com", PASSWORD)
        page = tab.page
        expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(["Groups", "Account"])
        plain_id = admin_node.call("GET", "/groups/plain").json()["id"]
        page.goto(f"{admin_node.url}/admin/#/groups?id={plain_id}")
        panel = page.get_by_role("region", name="Group plain")
        expect(panel.get_by_test_id("membership-rule")).to_contain_text("Manage permissions")
        panel.get_by_label("Member's email").fill("keeper@example.com")
        panel.get_by_role("button", name="Add member").click()
        expect(page.get_by_test_id("status")).to_have_text("Added keeper@example.com to plain.")
        assert members(admin_node, "plain") == ["keeper@example.com"]

        granted_id = admin_node.call("GET", "/groups/granted").json()["id"]
        page.goto(f"{admin_node.url}/admin/#/groups?id={granted_id}")
        panel = page.get_by_role("region", name="Group granted")
        panel.get_by_label("Member's email").fill("keeper@example.com")
        panel.get_by_role("button", name="Add member").click()
        alert = panel.get_by_role("alert")
        expect(alert).to_contain_text("The Node refused this")
        expect(alert).to_contain_text("carries grants on data")
        expect(alert).to_contain_text("only a role with “Manage permissions”")
        assert members(admin_node, "granted") == []
        assert [e for e in tab.errors if "status of 403" not in e] == []
