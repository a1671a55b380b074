"""The Admin in Chromium against live Nodes: first-run setup, sign in, the dashboard, users (create, search, page,
change a role), a 403 in words, every page at 1280 and 800 px with no console error, the keyboard, and the exported
bundle served from another origin."""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from grid_runtime.admin import export
from tests.admin.conftest import AdminNode, Tab
from tests.live import OWNER_EMAIL, OWNER_PASSWORD, LiveNode, free_port

ROUTES_FILE = Path(__file__).resolve().parents[2] / "grid_runtime" / "admin" / "src" / "routes.ts"
PAGES = {"/sign-in": "Sign in", "/setup": "First-run setup", "/": "Dashboard", "/requests": "Requests",
         "/jobs": "Jobs", "/users": "Users", "/groups": "Groups",
         "/data": "Tensors and datasets", "/roles": "Roles", "/workers": "Workers", "/audit": "Audit log",
         "/settings": "Settings", "/account": "Account", "/networks": "Networks",
         "/fl": "Federated learning"}
PASSWORD = "a long password 1"


def sign_in(tab: Tab, base: str, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD) -> None:
    page = tab.page
    page.goto(base)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text(email)


def network_refusals_only(tab: Tab) -> list[str]:
    """Errors other than Chromium's own line for an answer the test provoked (a 4xx it asserts on)."""
    return [e for e in tab.errors if not re.search(r"Failed to load resource: .* status of 4\d\d", e)]


class TestFirstRunSetup:
    def test_the_owner_is_created_with_the_setup_token_and_signed_in(self, unset_node: LiveNode,
                                                                    open_tab: Any) -> None:
        tab = open_tab()
        page = tab.page
        page.goto(f"{unset_node.url}/admin/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_role("link", name="First-run setup").click()
        expect(page.get_by_role("heading", name="First-run setup")).to_be_visible()
        page.get_by_label("Setup token").fill("not-the-token")
        page.get_by_label("Owner's email").fill("first@example.com")
        page.get_by_label("Full name").fill("First Owner")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create the Owner").click()
        expect(page.get_by_role("alert")).to_contain_text("setup token is not valid")

        token = (unset_node.state_dir / "setup-token").read_text().strip()
        page.get_by_label("Setup token").fill(token)
        page.get_by_role("button", name="Create the Owner").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.get_by_test_id("who")).to_have_text("first@example.com · Owner")
        assert not (unset_node.state_dir / "setup-token").exists()
        assert unset_node.login("first@example.com", PASSWORD)
        assert network_refusals_only(tab) == []


class TestSignIn:
    def test_a_wrong_password_is_refused_in_words_and_the_right_one_opens_the_dashboard(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        tab = open_tab()
        page = tab.page
        page.goto(f"{admin_node.url}/admin/")
        page.get_by_label("Email").fill(OWNER_EMAIL)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("invalid email or password")
        page.get_by_label("Password").fill(OWNER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        nav = page.get_by_role("navigation", name="Pages")
        expect(nav.get_by_role("link")).to_have_text(["Dashboard", "Requests", "Jobs", "Users", "Groups",
                                                      "Tensors and datasets", "Federated learning", "Roles",
                                                      "Workers", "Networks", "Audit log", "Settings", "Account"])
        assert network_refusals_only(tab) == []

    def test_sign_out_forgets_the_session_and_revokes_it(self, admin_node: AdminNode, open_tab: Any) -> None:
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        token = tab.page.evaluate("sessionStorage.getItem('gridctl.admin.token')")
        assert admin_node.call("GET", "/users/me", token=token).status_code == 200
        tab.page.get_by_role("button", name="Sign out").click()
        expect(tab.page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert tab.page.evaluate("sessionStorage.getItem('gridctl.admin.token')") is None
        assert admin_node.call("GET", "/users/me", token=token).status_code == 401


class TestDashboard:
    def test_it_shows_a_pending_request_and_each_users_epsilon_against_their_budget(
        self, admin_node: AdminNode, open_tab: Any
    ) -> None:
        scientist = admin_node.user("dash-scientist@example.com", PASSWORD)
        admin_node.call("PUT", "/users/dash-scientist@example.com/budget", json={"epsilon": 2.5}).raise_for_status()
        filed = admin_node.call("POST", "/requests", token=scientist,
                                json={"kind": "budget", "epsilon": 1.5, "reason": "one more study"})
        assert filed.status_code == 201, filed.text
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        pending = page.get_by_role("region", name="Pending requests")
        expect(pending.get_by_role("row").filter(has_text="dash-scientist@example.com")).to_contain_text("budget")
        total = admin_node.call("GET", "/requests", params={"status": "pending"}).json()["total"]
        expect(page.get_by_test_id("pending-total")).to_have_text(f"{total} pending")
        expect(page.get_by_role("region", name="Jobs").get_by_test_id("jobs-total")).to_have_text("0 in all")
        budgets = page.get_by_role("region", name="ε spent against budgets")
        row = budgets.get_by_role("row").filter(has_text="dash-scientist@example.com")
        expect(row).to_have_text(re.compile(r"dash-scientist@example\.com\s*0\.000\s*2\.500"))
        canvas = budgets.locator("canvas")
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] >= 120
        tab.assert_no_errors()


class TestUsers:
    def test_a_user_created_in_the_form_is_listed_with_the_role_chosen(self, admin_node: AdminNode,
                                                                     open_tab: Any) -> None:
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
        form = page.get_by_role("region", name="Create a user")
        form.get_by_label("Email").fill("ada@example.com")
        form.get_by_label("Full name").fill("Ada Lovelace")
        form.get_by_label("Initial password").fill(PASSWORD)
        form.get_by_label("Role").select_option("Compliance Officer")
        form.get_by_role("button", name="Create user").click()
        expect(page.get_by_test_id("status")).to_have_text("Created ada@example.com (Compliance Officer).")
        expect(page.get_by_test_id("users").get_by_role("row").filter(has_text="ada@example.com")).to_contain_text(
            "Ada Lovelace")
        created = admin_node.call("GET", "/users/ada@example.com").json()
        assert (created["full_name"], created["role"]["name"]) == ("Ada Lovelace", "Compliance Officer")
        assert admin_node.node.login("ada@example.com", PASSWORD)

        page.get_by_label("Search by email or name").fill("lovelace")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_test_id("users").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_test_id("range")).to_have_text("(1–1 of 1)")
        tab.assert_no_errors()

    def test_the_list_is_paginated_by_the_node(self, admin_node: AdminNode, open_tab: Any) -> None:
        for i in range(21):
            admin_node.call("POST", "/users", json={"email": f"paged-{i:02}@example.com",
                                                    "password": PASSWORD}).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/users?q=paged-")
        expect(page.get_by_test_id("range")).to_have_text("(1–20 of 21)")
        expect(page.get_by_test_id("users").locator("tbody tr")).to_have_count(20)
        expect(page.get_by_role("link", name="Previous")).to_have_count(0)
        page.get_by_role("link", name="Next").click()
        expect(page.get_by_test_id("range")).to_have_text("(21–21 of 21)")
        expect(page.get_by_test_id("users").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_role("link", name="Next")).to_have_count(0)
        tab.assert_no_errors()

    def test_a_role_is_changed_and_a_refused_change_is_explained(self, admin_node: AdminNode,
                                                               open_tab: Any) -> None:
        admin_node.call("POST", "/users", json={"email": "grace@example.com", "password": PASSWORD}
                        ).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/users?q=grace@")
        page.get_by_label("Role of grace@example.com", exact=True).select_option("Administrator")
        page.get_by_role("button", name="Change the role of grace@example.com").click()
        expect(page.get_by_test_id("status")).to_have_text("grace@example.com is now Administrator.")
        assert admin_node.call("GET", "/users/grace@example.com").json()["role"]["name"] == "Administrator"

        # An Administrator may not give the Owner role (it holds capabilities they lack): the Node refuses, in words.
        admin_node.call("POST", "/users", json={"email": "linus@example.com", "password": PASSWORD}
                        ).raise_for_status()
        tab2 = open_tab()
        sign_in(tab2, f"{admin_node.url}/admin/", "grace@example.com", PASSWORD)
        tab2.page.goto(f"{admin_node.url}/admin/#/users?q=linus@")
        tab2.page.get_by_label("Role of linus@example.com", exact=True).select_option("Owner")
        tab2.page.get_by_role("button", name="Change the role of linus@example.com").click()
        expect(tab2.page.get_by_role("alert")).to_contain_text("The Node refused this")
        assert admin_node.call("GET", "/users/linus@example.com").json()["role"]["name"] == "Data Scientist"


class TestRequests:
    def test_one_request_approved_and_another_denied_reach_the_requesters(self, admin_node: AdminNode,
                                                                        open_tab: Any) -> None:
        import gridctl

        filed = {}
        for name, ask in (("alice", 1.0), ("bob", 2.0)):
            token = admin_node.user(f"{name}-req@example.com", PASSWORD)
            answer = admin_node.call("POST", "/requests", token=token,
                                     json={"kind": "budget", "epsilon": ask, "reason": f"{name}'s next study"})
            assert answer.status_code == 201, answer.text
            filed[name] = answer.json()["id"]
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Requests").click()
        queue = page.get_by_test_id("requests")
        expect(queue.get_by_role("row").filter(has_text="alice-req@example.com")).to_contain_text("ε +1.000")
        expect(queue.get_by_role("row").filter(has_text="bob-req@example.com")).to_contain_text("ε +2.000")

        page.get_by_role("link", name=f"Open request {filed['alice']}").click()
        panel = page.get_by_role("region", name=f"Request {filed['alice']}")
        expect(panel).to_contain_text("alice's next study")
        panel.get_by_label("Note for the requester (optional)").fill("granted for the study")
        panel.get_by_role("button", name="Approve").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Request {filed['alice']} approved.")
        expect(panel.get_by_test_id("request-state")).to_have_text("approved")
        expect(queue.get_by_role("row").filter(has_text="alice-req@example.com")).to_have_count(0)

        page.get_by_role("link", name=f"Open request {filed['bob']}").click()
        panel = page.get_by_role("region", name=f"Request {filed['bob']}")
        panel.get_by_label("Reason for denying (shown to the requester)").fill("the dataset's cap is near")
        panel.get_by_role("button", name="Deny").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Request {filed['bob']} denied.")
        expect(panel.get_by_test_id("request-state")).to_have_text("denied")
        tab.assert_no_errors()

        # What each data scientist's SDK sees.
        alice = gridctl.connect(admin_node.url, email="alice-req@example.com", password=PASSWORD)
        bob = gridctl.connect(admin_node.url, email="bob-req@example.com", password=PASSWORD)
        seen_by_alice = alice.requests.get(filed["alice"])
        seen_by_bob = bob.requests.get(filed["bob"])
        assert (seen_by_alice["state"], seen_by_alice["decision_note"]) == ("approved", "granted for the study")
        assert (seen_by_bob["state"], seen_by_bob["decision_note"]) == ("denied", "the dataset's cap is near")
        assert alice.budget()["budget_epsilon"] == pytest.approx(1.0)
        assert bob.budget()["budget_epsilon"] == pytest.approx(0.0)

    def test_deciding_your_own_request_is_refused_in_words(self, admin_node: AdminNode, open_tab: Any) -> None:
        own = admin_node.call("POST", "/requests", json={"kind": "budget", "epsilon": 0.5, "reason": "mine"})
        assert own.status_code == 201, own.text
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/requests?id={own.json()['id']}")
        page.get_by_role("button", name="Approve").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("The Node refused this")
        expect(alert).to_contain_text("own")
        assert admin_node.call("GET", f"/requests/{own.json()['id']}").json()["state"] == "pending"


class TestRoles:
    def test_a_role_is_created_and_its_capabilities_changed_in_the_matrix(self, admin_node: AdminNode,
                                                                        open_tab: Any) -> None:
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Roles").click()
        owner_edits = page.get_by_role("checkbox", name="Owner: Edit roles")
        expect(owner_edits).to_be_checked()
        expect(owner_edits).to_be_disabled()  # a preset role
        expect(page.get_by_role("checkbox", name="Data Scientist: Edit roles")).not_to_be_checked()
        form = page.get_by_role("region", name="Create a role")
        form.get_by_label("Name").fill("Auditor")
        form.get_by_label("Description").fill("reads the audit log")
        form.get_by_role("checkbox", name="View statistics").check()
        form.get_by_role("button", name="Create role").click()
        status = page.get_by_test_id("status")
        expect(status).to_have_text("Created the role Auditor.")
        expect(page.get_by_role("checkbox", name="Auditor: View statistics")).to_be_checked()
        page.get_by_role("checkbox", name="Auditor: Manage groups").check()
        page.get_by_role("button", name="Save Auditor").click()
        expect(status).to_have_text("Saved Auditor.")
        role = admin_node.call("GET", "/roles/Auditor").json()
        assert (sorted(role["capabilities"]), role["description"]) == (["manage_groups", "view_statistics"],
                                                                      "reads the audit log")
        tab.assert_no_errors()

    def test_capabilities_you_lack_cannot_be_given(self, admin_node: AdminNode, open_tab: Any) -> None:
        for name, caps in (("Role Editor", ["edit_roles", "manage_users"]), ("Grouper", ["manage_groups"]),
                           ("Blank", [])):
            admin_node.call("POST", "/roles", json={"name": name, "capabilities": caps}).raise_for_status()
        admin_node.user("role-editor@example.com", PASSWORD, role="Role Editor")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "role-editor@example.com", PASSWORD)
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/roles")
        expect(page.get_by_role("region", name="The rules")).to_contain_text("only capabilities you hold yourself")
        expect(page.get_by_role("checkbox", name="Blank: Manage users")).to_be_enabled()
        expect(page.get_by_role("checkbox", name="Blank: Manage infrastructure")).to_be_disabled()
        expect(page.get_by_role("row").filter(has_text="Grouper")).to_contain_text("has capabilities you lack")
        expect(page.get_by_role("checkbox", name="Grouper: Manage users")).to_be_disabled()
        form = page.get_by_role("region", name="Create a role")
        expect(form.get_by_role("checkbox", name="Manage infrastructure")).to_be_disabled()
        tab.assert_no_errors()


class TestAudit:
    def test_the_log_is_filtered_by_the_node(self, admin_node: AdminNode, open_tab: Any) -> None:
        admin_node.call("POST", "/roles", json={"name": "Audited", "capabilities": []}).raise_for_status()
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Audit log").click()
        rows = page.get_by_test_id("events").locator("tbody tr")
        expect(rows.filter(has_text="user.created").first).to_be_visible()
        page.get_by_label("Action (exact, or a prefix ending in *)").fill("role.*")
        page.get_by_role("button", name="Filter").click()
        total = admin_node.call("GET", "/audit", params={"action": "role.*"}).json()["total"]
        assert 1 <= total <= 25
        expect(page.get_by_test_id("range")).to_have_text(f"(1–{total} of {total})")
        expect(rows).to_have_count(total)
        assert all("role." in text for text in rows.all_inner_texts())
        expect(rows.filter(has_text="Audited")).to_have_count(1)
        tab.assert_no_errors()


class TestAccount:
    def test_an_api_token_is_shown_once_works_and_is_revoked(self, admin_node: AdminNode, open_tab: Any) -> None:
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Account").click()
        page.get_by_label("Token name").fill("nightly-ci")
        page.get_by_label("Expires after (days, empty: never)").fill("30")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_test_id("status")).to_have_text("Token nightly-ci created.")
        secret = page.get_by_label("New token's secret").input_value()
        assert len(secret) >= 20
        assert admin_node.call("GET", "/users/me", token=secret).json()["email"] == OWNER_EMAIL
        row = page.get_by_test_id("tokens").get_by_role("row").filter(has_text="nightly-ci")
        expect(row).to_contain_text("active")
        page.get_by_role("button", name="Revoke nightly-ci").click()
        expect(page.get_by_test_id("status")).to_have_text("Token nightly-ci revoked.")
        expect(row).to_contain_text("revoked")
        assert admin_node.call("GET", "/users/me", token=secret).status_code == 401
        tab.assert_no_errors()

    def test_a_password_is_changed_and_the_new_one_signs_in(self, admin_node: AdminNode, open_tab: Any) -> None:
        admin_node.user("changer@example.com", PASSWORD, role="Compliance Officer")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "changer@example.com", PASSWORD)
        page = tab.page
        page.goto(f"{admin_node.url}/admin/#/account")
        you = page.get_by_role("region", name="You", exact=True)
        expect(you).to_contain_text("see every request, approve or deny them")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill("another long password 2")
        page.get_by_label("New password again").fill("another long password 2")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_test_id("status")).to_contain_text("Password changed.")
        page.get_by_role("button", name="Sign out").click()
        sign_in(tab, f"{admin_node.url}/admin/", "changer@example.com", "another long password 2")
        refused = httpx.post(f"{admin_node.node.api}/auth/login",
                             json={"email": "changer@example.com", "password": PASSWORD})
        assert refused.status_code == 401


class TestForbidden:
    def test_an_officer_sees_only_their_pages_and_a_403_is_explained_in_words(self, admin_node: AdminNode,
                                                                             open_tab: Any) -> None:
        admin_node.user("officer@example.com", PASSWORD, role="Compliance Officer")
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "officer@example.com", PASSWORD)
        page = tab.page
        expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(
            ["Dashboard", "Requests", "Jobs", "Workers", "Audit log", "Settings", "Account"])
        expect(page.get_by_role("region", name="ε spent against budgets")).to_be_visible()
        page.goto(f"{admin_node.url}/admin/#/users")
        alert = page.get_by_role("alert").first
        expect(alert).to_contain_text("it needs the capability “Manage users”")
        expect(alert).to_contain_text("which your role, Compliance Officer, does not include")
        expect(page.get_by_role("region", name="Create a user")).to_have_count(0)
        assert network_refusals_only(tab) == []

    def test_a_data_scientist_is_told_the_admin_is_not_for_them(self, admin_node: AdminNode, open_tab: Any) -> None:
        admin_node.user("scientist-ui@example.com", PASSWORD)
        tab = open_tab()
        sign_in(tab, f"{admin_node.url}/admin/", "scientist-ui@example.com", PASSWORD)
        expect(tab.page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(["Account"])
        expect(tab.page.get_by_role("status").first).to_contain_text("Data scientists use the gridctl CLI")


class TestEveryPage:
    def test_the_test_knows_every_route(self) -> None:
        declared = re.findall(r'\bpath: "([^"]+)"', ROUTES_FILE.read_text())
        assert sorted(declared) == sorted(PAGES)

    @pytest.mark.parametrize("width", [1280, 800])
    def test_every_page_loads_without_console_errors_or_sideways_scrolling(
        self, admin_node: AdminNode, open_tab: Any, width: int
    ) -> None:
        tab = open_tab(width=width)
        sign_in(tab, f"{admin_node.url}/admin/")
        page = tab.page
        shots = os.environ.get("GRID_ADMIN_SCREENSHOTS")
        for path, title in PAGES.items():
            page.goto(f"{admin_node.url}/admin/#{path}")
            expect(page.get_by_role("heading", level=1)).to_have_text(title)
            expect(page.get_by_text("Loading…")).to_have_count(0)  # every section answered
            expect(page).to_have_title(f"{title} · gridctl Admin")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} at {width} px scrolls sideways by {overflow} px"
            if shots and width == 1280:  # docs/admin.md shows each page at 1280 px (.ci/run writes them there)
                Path(shots).mkdir(parents=True, exist_ok=True)
                name = path.strip("/") or "dashboard"
                page.screenshot(path=str(Path(shots) / f"{name}-{width}.png"), full_page=True)
        tab.assert_no_errors()

    def test_the_keyboard_reaches_everything_with_a_visible_focus(self, admin_node: AdminNode,
                                                                open_tab: Any) -> None:
        tab = open_tab()
        page = tab.page
        page.goto(f"{admin_node.url}/admin/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.name") == "email"
        page.keyboard.type(OWNER_EMAIL)
        page.keyboard.press("Tab")
        page.keyboard.type(OWNER_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        focused = []
        for _ in range(15):
            page.keyboard.press("Tab")
            focused.append(page.evaluate(
                "[document.activeElement.textContent.trim(), getComputedStyle(document.activeElement).outlineStyle,"
                " getComputedStyle(document.activeElement).outlineWidth]"))
        assert [f[0] for f in focused] == ["Skip to content", "Dashboard", "Requests", "Jobs", "Users", "Groups",
                                           "Tensors and datasets", "Federated learning", "Roles", "Workers",
                                           "Networks", "Audit log", "Settings", "Account", "Sign out"]
        assert all(style != "none" and width != "0px" for _, style, width in focused), focused
        tab.assert_no_errors()


@contextmanager
def static_server(directory: Path, port: int) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


class TestExportedBundle:
    def test_it_signs_in_from_an_allowed_origin_and_explains_a_refused_one(
        self, admin_node: AdminNode, open_tab: Any, tmp_path: Path
    ) -> None:
        site = tmp_path / "site"
        export(site, admin_node.url)
        allowed_port = int(admin_node.static_origin.rsplit(":", 1)[1])
        with static_server(site, allowed_port) as origin:
            assert origin == admin_node.static_origin
            tab = open_tab()
            sign_in(tab, f"{origin}/")
            expect(tab.page.get_by_role("heading", name="Dashboard")).to_be_visible()
            expect(tab.page.get_by_test_id("pending-total")).to_be_visible()
            tab.assert_no_errors()
        with static_server(site, free_port()) as other:
            tab = open_tab()
            page = tab.page
            page.goto(f"{other}/")
            page.get_by_label("Email").fill(OWNER_EMAIL)
            page.get_by_label("Password").fill(OWNER_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text(f"The Node at {admin_node.url} could not be reached")
            expect(page.get_by_role("alert")).to_contain_text("GRID_NODE_CORS_ORIGINS")
