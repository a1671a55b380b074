"""The Admin's operations pages in Chromium against a live Node: jobs (seeded into the Node's database as a finished
and a queued job write them; listing needs no Ray) listed, filtered, opened without any figure on private data, and
cancelled; the Workers page of a Node without Ray and its scaling command; a user's panel (disabled, so their SDK
login is refused; added to a group; a budget set and shown as a bar; a token revoked, which then gets 401; a refused
group change in words); and a custom role deleted after a confirmation, while presets say why they stay."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from grid_runtime.core.database import create_database_engine, make_sessionmaker
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.jobs.models import Job, Result
from tests.admin.conftest import AdminNode
from tests.admin.test_admin_e2e import PASSWORD, network_refusals_only, sign_in
from tests.admin.test_admin_releases import SPEC

# Figures computed on private data that only officers' API answers carry: the Jobs page must show none of them.
PRIVATE_METRICS = [{"epoch": 1, "loss": 0.918273, "accuracy": 0.645372}]
PRIVATE_DETAIL = "row 17 of the cohort held 88.125"


def seed_job(admin_node: AdminNode, owner_id: int, state: str) -> int:
    """A training job of ``owner_id`` as the Node writes it: a succeeded one with its result, or a queued one."""
    engine = create_database_engine(NodeSettings(state_dir=admin_node.node.state_dir).resolved_database_url)
    finished = datetime.now(UTC) if state == "succeeded" else None
    try:
        with make_sessionmaker(engine).begin() as session:
            job = Job(kind="train", state=state, owner_id=owner_id, dataset_id=None, inputs={}, spec=SPEC,
                      settings={"epochs": 2, "batch_size": 8}, planned_event=None, metrics=PRIVATE_METRICS,
                      error_detail=PRIVATE_DETAIL, started_at=finished, finished_at=finished)
            session.add(job)
            session.flush()
            if state == "succeeded":
                session.add(Result(job_id=job.id, owner_id=owner_id, kind="model", object_key=f"results/{job.id}",
                                   sha256="0" * 64, size_bytes=1, lineage={"inputs": {}}, event=None, epsilon=None,
                                   delta=1e-5))
            return int(job.id)
    finally:
        engine.dispose()


def screenshot(page: Any, name: str) -> None:
    """With GRID_ADMIN_SCREENSHOTS set, the page as docs/admin.md shows it (the panels the page list does not open)."""
    shots = os.environ.get("GRID_ADMIN_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"{name}-1280.png"), full_page=True)


def user_id(admin_node: AdminNode, email: str) -> int:
    return int(admin_node.call("GET", f"/users/{email}").json()["id"])


class TestJobs:
    def test_seeded_jobs_are_listed_filtered_opened_without_private_figures_and_cancelled(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        email = "jobs-scientist@example.com"
        admin_node.user(email, PASSWORD)
        owner = user_id(admin_node, email)
        done = seed_job(admin_node, owner, "succeeded")
        queued = seed_job(admin_node, owner, "queued")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Jobs").click()
        rows = page.get_by_test_id("jobs").locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text(re.compile(rf"{queued}\s*train\s*queued\s*{re.escape(email)}"))
        expect(rows.nth(1)).to_contain_text(re.compile(rf"{done}\s*train\s*succeeded\s*{re.escape(email)}"))
        page.get_by_label("State").select_option("succeeded")
        expect(page.get_by_test_id("range")).to_have_text("(1–1 of 1)")
        expect(rows).to_have_count(1)

        page.get_by_role("link", name=f"Open job {done}").click()
        panel = page.get_by_role("region", name=f"Job {done}")
        expect(panel.get_by_test_id("job-state")).to_have_text("succeeded")
        expect(panel.get_by_test_id("job-facts")).to_contain_text(email)
        expect(panel.get_by_test_id("job-facts")).to_contain_text("not shown here")
        expect(panel.get_by_test_id("parameters-total")).to_have_text("23")  # 4*3+3 + 3*2+2
        assert admin_node.call("GET", f"/jobs/{done}").json()["metrics"] == PRIVATE_METRICS  # the API has them
        text = page.locator("body").inner_text()
        for private in ("0.918273", "0.645372", "accuracy", PRIVATE_DETAIL):
            assert private not in text
        expect(panel.get_by_role("button", name=f"Cancel job {done}")).to_have_count(0)  # finished
        screenshot(page, "job")

        page.goto(f"{admin_node.url}/admin/#/jobs?id={queued}")
        panel = page.get_by_role("region", name=f"Job {queued}")
        panel.get_by_role("button", name=f"Cancel job {queued}").click()
        panel.get_by_role("button", name="Yes, cancel").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Cancelling job {queued}.")
        expect(panel.get_by_test_id("job-state")).to_have_text("queued (cancel requested)")
        assert admin_node.call("GET", f"/jobs/{queued}").json()["cancel_requested"] is True
        tab.assert_no_errors()

    def test_a_scientist_sees_only_their_own_jobs(self, admin_node: AdminNode, open_tab: Any) -> None:
        email = "own-jobs@example.com"
        admin_node.user(email, PASSWORD)
        mine = seed_job(admin_node, user_id(admin_node, email), "queued")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", email, PASSWORD)
        page = tab.page
        expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(["Account"])
        page.goto(f"{admin_node.url}/admin/#/jobs")
        expect(page.get_by_text("Your own jobs only")).to_be_visible()
        expect(page.get_by_test_id("jobs").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_role("link", name=f"Open job {mine}")).to_be_visible()
        tab.assert_no_errors()


class TestWorkers:
    def test_a_node_without_ray_says_so_and_scaling_is_a_gridctl_command(self, admin_node: AdminNode,
                                                                        open_tab: Any) -> None:
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Workers").click()
        expect(page.get_by_test_id("workers-enabled")).to_contain_text("GRID_NODE_RAY_ENABLED=false")
        expect(page.get_by_text("No Worker is attached.")).to_be_visible()
        assert admin_node.call("GET", "/workers").json()["workers"] == []
        scale = page.get_by_role("region", name="Scale")
        expect(scale).to_contain_text("the Node never starts machines or processes itself")
        scale.get_by_label("Deployment name").fill("prod-eu")
        scale.get_by_label("Number of Workers").fill("5")
        command = scale.get_by_test_id("scale-command")
        expect(command).to_have_text("gridctl workers scale 5 --name prod-eu")
        scale.get_by_role("button", name="Copy").click()
        expect(scale.get_by_test_id("copied")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == "gridctl workers scale 5 --name prod-eu"
        scale.get_by_label("Deployment name").fill("Prod EU")
        expect(scale.get_by_role("alert")).to_contain_text("lower-case letters, digits and hyphens")
        expect(command).to_have_text("gridctl workers scale 5 --name DEPLOYMENT")
        tab.assert_no_errors()

    def test_without_view_statistics_the_page_explains_the_refusal(self, admin_node: AdminNode,
                                                                  open_tab: Any) -> None:
        admin_node.user("no-stats@example.com", PASSWORD)
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "no-stats@example.com", PASSWORD)
        tab.page.goto(f"{admin_node.url}/admin/#/workers")
        expect(tab.page.get_by_role("alert").first).to_contain_text("it needs the capability “View statistics”")
        assert network_refusals_only(tab) == []


def open_user(tab: Any, admin_node: AdminNode, email: str) -> Any:
    tab.page.goto(f"{admin_node.url}/admin/#/users?q={email}&id={user_id(admin_node, email)}")
    return tab.page.get_by_role("region", name=f"User {email}")


class TestUserPanel:
    def test_a_disabled_user_cannot_sign_in_and_is_enabled_again(self, admin_node: AdminNode,
                                                                 open_tab: Any) -> None:
        import gridctl
        from gridctl.sdk.errors import GridctlError

        email = "to-disable@example.com"
        token = admin_node.user(email, PASSWORD)
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        panel = open_user(tab, admin_node, email)
        panel.get_by_role("button", name=f"Disable {email}").click()
        expect(tab.page.get_by_test_id("status")).to_have_text(f"{email} is disabled; their tokens are revoked.")
        expect(panel.get_by_test_id("user-state")).to_contain_text("disabled")
        expect(tab.page.get_by_test_id("users").get_by_role("row").filter(has_text=email)).to_contain_text("disabled")
        assert admin_node.call("GET", "/users/me", token=token).status_code == 401
        with pytest.raises(GridctlError):
            gridctl.connect(admin_node.url, email=email, password=PASSWORD)

        panel.get_by_role("button", name=f"Enable {email}").click()
        expect(panel.get_by_test_id("user-state")).to_have_text("active")
        assert gridctl.connect(admin_node.url, email=email, password=PASSWORD).users.me()["email"] == email
        tab.assert_no_errors()

    def test_a_user_is_added_to_a_group_and_given_a_budget_shown_as_a_bar(self, admin_node: AdminNode,
                                                                       open_tab: Any) -> None:
        email = "panel-member@example.com"
        admin_node.user(email, PASSWORD)
        admin_node.call("POST", "/groups", json={"name": "cohort-a"}).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        panel = open_user(tab, admin_node, email)
        status = tab.page.get_by_test_id("status")
        panel.get_by_label("Group's name").fill("cohort-a")
        panel.get_by_role("button", name="Add to group").click()
        expect(status).to_have_text(f"Added {email} to cohort-a.")
        expect(panel.get_by_test_id("user-groups")).to_contain_text("cohort-a")
        assert admin_node.call("GET", f"/users/{email}").json()["groups"] == ["cohort-a"]

        panel.get_by_label("New ε budget").fill("3.5")
        panel.get_by_role("button", name="Set budget").click()
        expect(status).to_have_text(f"The ε budget of {email} is now 3.500.")
        meter = panel.get_by_role("meter", name=f"ε of {email}: 0.000 of 3.500 ε spent")
        expect(meter).to_be_visible()
        assert meter.evaluate("m => [m.min, m.max, m.value]") == [0, 3.5, 0]
        assert admin_node.call("GET", f"/budget/users/{email}").json()["budget_epsilon"] == pytest.approx(3.5)
        row = tab.page.get_by_test_id("users").get_by_role("row").filter(has_text=email)
        expect(row.get_by_role("meter")).to_have_accessible_name(f"ε of {email}: 0.000 of 3.500 ε spent")
        screenshot(tab.page, "user")

        panel.get_by_role("button", name=f"Remove {email} from cohort-a").click()
        expect(status).to_have_text(f"Removed {email} from cohort-a.")
        expect(panel.get_by_text("In no group.")).to_be_visible()
        assert admin_node.call("GET", f"/users/{email}").json()["groups"] == []
        tab.assert_no_errors()

    def test_a_token_revoked_by_an_administrator_then_gets_401(self, admin_node: AdminNode, open_tab: Any) -> None:
        email = "token-holder@example.com"
        session = admin_node.user(email, PASSWORD)
        created = admin_node.call("POST", "/tokens", token=session, json={"name": "nightly"})
        assert created.status_code == 201, created.text
        secret = created.json()["token"]
        assert admin_node.call("GET", "/users/me", token=secret).status_code == 200
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        panel = open_user(tab, admin_node, email)
        tokens = panel.get_by_test_id("user-tokens")
        expect(tokens.locator("tbody tr")).to_have_count(2)  # the session and the API token
        assert secret not in tab.page.locator("body").inner_text()
        panel.get_by_role("button", name=f"Revoke API token nightly of {email}").click()
        expect(tab.page.get_by_test_id("status")).to_have_text(f"Revoked API token nightly of {email}.")
        expect(tokens.locator("tbody tr")).to_have_count(1)
        assert admin_node.call("GET", "/users/me", token=secret).status_code == 401
        assert admin_node.call("GET", "/users/me", token=session).status_code == 200  # only that one
        tab.assert_no_errors()

    def test_a_group_change_refused_by_the_node_is_explained_in_words(self, admin_node: AdminNode,
                                                                      open_tab: Any) -> None:
        admin_node.call("POST", "/roles", json={"name": "User Desk", "capabilities": ["manage_users"]}
                        ).raise_for_status()
        admin_node.user("desk@example.com", PASSWORD, role="User Desk")
        admin_node.user("desk-member@example.com", PASSWORD)
        admin_node.call("POST", "/groups", json={"name": "cohort-b"}).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "desk@example.com", PASSWORD)
        panel = open_user(tab, admin_node, "desk-member@example.com")
        expect(panel.get_by_role("region", name="Privacy budget")).to_contain_text("needs “Manage budgets”")
        panel.get_by_label("Group's name").fill("cohort-b")
        panel.get_by_role("button", name="Add to group").click()
        alert = panel.get_by_role("alert")
        expect(alert).to_contain_text("it needs the capability “Manage groups”")
        expect(alert).to_contain_text("which your role, User Desk, does not include")
        assert admin_node.call("GET", "/users/desk-member@example.com").json()["groups"] == []
        assert network_refusals_only(tab) == []


class TestRoleDeletion:
    def test_a_custom_role_is_deleted_after_a_confirmation_and_presets_say_why_they_stay(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        admin_node.call("POST", "/roles", json={"name": "Short-lived", "capabilities": []}).raise_for_status()
        held = admin_node.call("POST", "/roles", json={"name": "Held", "capabilities": []}).json()
        admin_node.user("holder@example.com", PASSWORD, role="Held")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/roles")
        owner = admin_node.call("GET", "/roles/Owner").json()
        expect(page.get_by_test_id(f"undeletable-{owner['id']}")).to_have_text("preset: cannot be deleted")
        expect(page.get_by_test_id(f"undeletable-{held['id']}")).to_contain_text("held by 1 user")
        expect(page.get_by_role("button", name="Delete Owner")).to_have_count(0)

        page.get_by_role("button", name="Delete Short-lived").click()
        page.get_by_role("group", name="Delete the role Short-lived?").get_by_role("button", name="Keep it").click()
        assert admin_node.call("GET", "/roles/Short-lived").status_code == 200
        page.get_by_role("button", name="Delete Short-lived").click()
        page.get_by_role("button", name="Yes, delete").click()
        expect(page.get_by_test_id("status")).to_have_text("Deleted the role Short-lived.")
        expect(page.get_by_role("row").filter(has_text="Short-lived")).to_have_count(0)
        assert admin_node.call("GET", "/roles/Short-lived").status_code == 404
        tab.assert_no_errors()
