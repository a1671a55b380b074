"""The Admin's Network pages in Chromium, against one live Node and one live Network on loopback (plain http and
private addresses allowed explicitly on both sides, as tests/test_network_e2e.py does): the Node's administrator
joins from the Node's Networks page (a refused URL explained in words first); on the Network's own Admin (the same
bundle, served by the Network at /admin/) the request is approved; the Node's page then shows it approved after a
sync; the Network's Nodes page shows the Node, fresh, with the statistics the Network reads from it; a search finds
the Node's tensor naming the Node, its URL and its id there; an invitation's code is shown once and works; a user is
created; a custom role is created on the Roles page (the Node's page, with the Network's capabilities) and only by a
holder of Edit roles; an API token made on the Account page works against the API until it is revoked; every new
page loads at 1280 and 800 px with no console error; and the Node leaves after a confirmation.

The tests of this module run in order on one deployment (one Node, one Network, one browser)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.admin.conftest import Tab, require_bundle
from tests.admin.test_admin_e2e import PASSWORD, network_refusals_only, sign_in
from tests.live import OWNER_EMAIL, LiveNode, start_live_node
from tests.networks import LiveNetwork, start_live_network
from tests.test_network_e2e import NODE_ENV, upload

NODE_NAME = "alpha"
NETWORK_PAGES = {"/": "Search", "/associations": "Associations", "/invitations": "Invitations", "/nodes": "Nodes",
                 "/users": "Users", "/roles": "Roles", "/audit": "Audit log", "/account": "Account"}
NETWORK_ROUTES_FILE = Path(__file__).resolve().parents[2] / "grid_runtime" / "admin" / "src" / "networkRoutes.ts"


def screenshot(page: Any, name: str) -> None:
    """With GRID_ADMIN_SCREENSHOTS set, the page at 1280 px as docs/admin.md shows it."""
    shots = os.environ.get("GRID_ADMIN_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"{name}-1280.png"), full_page=True)


def on_page(network: LiveNetwork, open_tab: Any, title: str) -> tuple[Tab, Any]:
    """A tab signed in to the Network's Admin as its Owner, and its page, on the one the navigation calls ``title``."""
    tab: Tab = open_tab()
    sign_in(tab, f"{network.url}/admin/")
    tab.page.get_by_role("navigation", name="Pages").get_by_role("link", name=title).click()
    return tab, tab.page


def signed_in_as(network: LiveNetwork, open_tab: Any, email: str, role: str | None = None) -> Tab:
    """A user of the Network made through its API (its default role, or ``role``), signed in to its Admin."""
    body = {"email": email, "password": PASSWORD, **({"role": role} if role else {})}
    httpx.post(f"{network.api}/users", headers=network.headers, timeout=30, json=body).raise_for_status()
    tab: Tab = open_tab()
    sign_in(tab, f"{network.url}/admin/", email, PASSWORD)
    return tab


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNetwork, LiveNode]]:
    require_bundle()
    network = start_live_network(tmp_path_factory.mktemp("admin-network"), {
        "GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"})
    try:
        node = start_live_node(tmp_path_factory.mktemp("admin-network-node"), {**NODE_ENV, "GRID_NODE_NAME": NODE_NAME})
        try:
            yield network, node
        finally:
            node.stop()
    finally:
        network.stop()


@pytest.fixture(scope="module")
def network(deployment: tuple[LiveNetwork, LiveNode]) -> LiveNetwork:
    return deployment[0]


@pytest.fixture(scope="module")
def network_name(deployment: tuple[LiveNetwork, LiveNode]) -> str:
    network, node = deployment
    answer = httpx.get(f"{network.api}/service", timeout=30)
    assert answer.status_code == 200
    assert answer.json()["kind"] == "network"
    assert httpx.get(f"{node.api}/service", timeout=30).json() == {"kind": "node", "name": NODE_NAME}
    return str(answer.json()["name"])


@pytest.fixture(scope="module")
def tensor_id(deployment: tuple[LiveNetwork, LiveNode]) -> int:
    _, node = deployment
    return upload(node, "mnist-train", tags=["mnist", "vision"], visibility="private",
                  description="handwritten digits, training split")


class TestTheNetworksAdmin:
    def test_the_test_knows_every_network_route(self) -> None:
        declared = re.findall(r'\bpath: "([^"]+)"', NETWORK_ROUTES_FILE.read_text())
        assert sorted(declared) == sorted([*NETWORK_PAGES, "/sign-in", "/setup"])

    def test_the_network_serves_the_admin_with_its_own_sign_in_and_setup(
        self, deployment: tuple[LiveNetwork, LiveNode], open_tab: Any
    ) -> None:
        network, _ = deployment
        served = httpx.get(f"{network.url}/admin/", timeout=30)
        assert served.status_code == 200
        assert "script-src 'self'" in served.headers["content-security-policy"]
        tab: Tab = open_tab()
        page = tab.page
        page.goto(f"{network.url}/admin/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_text(f"to the Network at {network.url}")).to_be_visible()
        screenshot(page, "network-sign-in")
        page.get_by_role("link", name="First-run setup").click()
        expect(page.get_by_role("heading", name="First-run setup")).to_be_visible()
        expect(page.get_by_text("Create the Network's Owner.")).to_be_visible()
        screenshot(page, "network-setup")
        page.get_by_label("Setup token").fill("not-the-token")
        page.get_by_label("Owner's email").fill("someone@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create the Owner").click()
        expect(page.get_by_role("alert")).to_contain_text("this Network may have its Owner")
        assert network_refusals_only(tab) == []

    def test_a_node_joins_is_approved_synced_found_and_its_statistics_read(
        self, deployment: tuple[LiveNetwork, LiveNode], network_name: str, tensor_id: int, open_tab: Any
    ) -> None:
        network, node = deployment
        # On the Node: a URL the Node refuses is explained, then the join is asked.
        on_node = open_tab()
        sign_in(on_node, f"{node.url}/admin/")
        node_page = on_node.page
        node_page.get_by_role("navigation", name="Pages").get_by_role("link", name="Networks").click()
        expect(node_page.get_by_role("heading", name="Networks", level=1)).to_be_visible()
        expect(node_page.get_by_text("This Node has not asked to join a Network.")).to_be_visible()
        join = node_page.get_by_role("form", name="Join a Network")
        join.get_by_label("Network URL").fill("ftp://network.example.com")
        join.get_by_label("This Node's URL (optional)").fill(node.url)
        join.get_by_role("button", name="Ask to join").click()
        expect(join.get_by_role("alert")).to_contain_text(
            "This Node does not accept that Network URL: the network_url must be an absolute https:// URL")
        join.get_by_label("Network URL").fill(network.url)
        # The Network's CA certificate, for a Network with a private CA: what is not one is explained in words.
        ca_box = join.get_by_label("Network's CA certificate (PEM, optional)")
        ca_box.fill("not a certificate")
        join.get_by_role("button", name="Ask to join").click()
        expect(join.get_by_role("alert")).to_contain_text(
            "The CA certificate was refused: the network_ca_pem is not PEM text of CA certificates")
        ca_box.fill("")
        join.get_by_role("button", name="Ask to join").click()
        expect(node_page.get_by_test_id("status")).to_have_text(
            f"Asked {network_name} to associate this Node: pending: waiting for the Network's administrators.")
        row = node_page.get_by_test_id("associations").locator("tbody tr")
        expect(row).to_have_count(1)
        expect(row.get_by_test_id("association-state")).to_have_text(
            "pending: waiting for the Network's administrators")
        expect(row.locator("td").nth(5)).to_have_text("public CAs")  # no root pinned: the public CAs verify it

        # On the Network's Admin: the request is approved with a note.
        on_network = open_tab()
        sign_in(on_network, f"{network.url}/admin/")
        net_page = on_network.page
        expect(net_page.get_by_role("heading", name="Search", level=1)).to_be_visible()
        expect(net_page.get_by_test_id("service")).to_have_text(f"gridctl Admin · Network {network_name}")
        expect(net_page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(
            ["Search", "Associations", "Invitations", "Nodes", "Users", "Roles", "Audit log", "Account"])
        net_page.get_by_role("navigation", name="Pages").get_by_role("link", name="Associations").click()
        pending = net_page.get_by_test_id("pending")
        expect(pending).to_contain_text(NODE_NAME)
        expect(pending).to_contain_text(node.url)
        screenshot(net_page, "network-associations")
        pending.get_by_label("Note (optional)").fill("welcome, alpha")
        pending.get_by_role("button", name=f"Approve {NODE_NAME}").click()
        expect(net_page.get_by_test_id("status")).to_have_text(f"{NODE_NAME} approved.")
        expect(net_page.get_by_text("No Node is waiting.")).to_be_visible()
        approved = net_page.get_by_test_id("approved")
        expect(approved).to_contain_text(NODE_NAME)
        expect(approved).to_contain_text("welcome, alpha")
        listed = httpx.get(f"{network.api}/associations", headers=network.headers, timeout=30).json()
        assert [(a["node_name"], a["state"], a["note"]) for a in listed] == [(NODE_NAME, "approved", "welcome, alpha")]

        # Back on the Node: a sync learns the decision and pushes the catalogue.
        node_page.get_by_role("button", name=f"Sync with {network_name} now").click()
        expect(node_page.get_by_test_id("status")).to_have_text(re.compile(
            rf"^Synced with {re.escape(network_name)}: approved: this Node's catalogue is searchable there; "
            r"1 entry pushed, \d+ removed\.$"))
        expect(row.get_by_test_id("association-state")).to_have_text(
            "approved: this Node's catalogue is searchable there")
        expect(row.locator("td").nth(3)).not_to_have_text("never")  # last push
        screenshot(node_page, "networks")

        # The Network's Nodes page: the Node, fresh, with one entry; its statistics read from the Node.
        net_page.get_by_role("navigation", name="Pages").get_by_role("link", name="Nodes").click()
        nodes = net_page.get_by_test_id("nodes").locator("tbody tr")
        expect(nodes).to_have_count(1)
        expect(nodes.locator("td")).to_have_text([NODE_NAME, node.url, "1", re.compile(r"\d"), "fresh", "Statistics"])
        expect(nodes.get_by_test_id("freshness")).to_have_text("fresh")
        net_page.get_by_role("link", name=f"Statistics of {NODE_NAME}").click()
        card = net_page.get_by_role("region", name=f"Statistics of {NODE_NAME}")
        expect(card.get_by_test_id("stat-tensors")).to_have_text("1")
        expect(card.get_by_test_id("stat-users")).to_have_text("1")
        expect(card.get_by_test_id("stat-datasets")).to_have_text("0")
        screenshot(net_page, "network-nodes")

        # A search finds the Node's tensor: the Node, its URL, the id there, fresh; never a value.
        net_page.get_by_role("navigation", name="Pages").get_by_role("link", name="Search").click()
        search = net_page.get_by_role("search", name="Search the catalogue")
        search.get_by_label("Words").fill("handwritten")
        search.get_by_label("Tag").fill("vision")
        search.get_by_role("button", name="Search").click()
        expect(net_page.get_by_test_id("range")).to_have_text("(1–1 of 1)")
        hit = net_page.get_by_test_id("hits").locator("tbody tr")
        expect(hit).to_have_count(1)
        expect(hit).to_contain_text("mnist-train")
        expect(hit).to_contain_text(NODE_NAME)
        expect(hit).to_contain_text(node.url)
        expect(hit).to_contain_text("3 × 4 float32")
        expect(hit.get_by_test_id("hit-id")).to_have_text(str(tensor_id))
        expect(hit.get_by_test_id("hit-freshness")).to_have_text("fresh")
        screenshot(net_page, "network-search")
        search.get_by_label("Tag").fill("audio")
        search.get_by_role("button", name="Search").click()
        expect(net_page.get_by_test_id("range")).to_have_text("(0–0 of 0)")
        expect(net_page.get_by_text("Nothing matches.")).to_be_visible()
        assert network_refusals_only(on_node) == []  # the refused URL's and certificate's 422s only
        on_network.assert_no_errors()

    def test_an_invitation_code_is_shown_once_and_approves_a_join_at_once(
        self, network: LiveNetwork, open_tab: Any
    ) -> None:
        tab, page = on_page(network, open_tab, "Invitations")
        form = page.get_by_role("form", name="Create an invitation")
        form.get_by_label("Note (who it is for, optional)").fill("for beta")
        form.get_by_role("button", name="Create an invitation").click()
        code = page.get_by_test_id("invitation-code")
        expect(code).to_have_text(re.compile(r"^gninvite_\S{20,}$"))
        expect(page.get_by_text("Copy the code now: it is not shown again.")).to_be_visible()
        screenshot(page, "network-invitations")
        joined = httpx.post(f"{network.api}/associations", timeout=30, json={
            "node_name": "beta", "node_url": "http://127.0.0.1:9", "node_credential": "gnodepeer_" + "b" * 40,
            "invitation": code.inner_text()})
        assert joined.status_code == 201, joined.text
        assert joined.json()["state"] == "approved"
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Associations").click()
        expect(page.get_by_test_id("approved")).to_contain_text("(invited)")
        tab.assert_no_errors()

    def test_users_are_created_and_given_a_role(self, network: LiveNetwork, open_tab: Any) -> None:
        tab, page = on_page(network, open_tab, "Users")
        create = page.get_by_role("form", name="Create a user")
        create.get_by_label("Email").fill("searcher@example.com")
        create.get_by_label("Password").fill(PASSWORD)
        create.get_by_role("button", name="Create user").click()
        expect(page.get_by_test_id("status")).to_have_text("searcher@example.com created.")
        page.get_by_label("Role of searcher@example.com").select_option("Administrator")
        expect(page.get_by_test_id("status")).to_have_text("searcher@example.com is now Administrator.")
        users = httpx.get(f"{network.api}/users", headers=network.headers, timeout=30).json()
        assert {u["email"]: u["role"] for u in users}["searcher@example.com"] == "Administrator"
        screenshot(page, "network-users")
        page.get_by_role("navigation", name="Pages").get_by_role("link", name="Audit log").click()
        events = page.get_by_test_id("events").locator("tbody tr")
        expect(events.first).to_contain_text(re.compile(r"user \d+\s*user\.updated\s*user \d+"))
        expect(page.get_by_test_id("events")).to_contain_text("association.approved")
        expect(page.get_by_test_id("events")).to_contain_text("invitation.created")
        screenshot(page, "network-audit")
        tab.assert_no_errors()

    def test_a_member_sees_search_and_nodes_and_a_refusal_in_words(
        self, network: LiveNetwork, open_tab: Any
    ) -> None:
        tab = signed_in_as(network, open_tab, "member@example.com")
        page = tab.page
        expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(
            ["Search", "Nodes", "Account"])
        page.goto(f"{network.url}/admin/#/associations")
        expect(page.get_by_role("alert").first).to_contain_text(
            "it needs the capability “Manage Nodes” (decide association requests, invite Nodes and end associations),"
            " which your role, Member, does not include. The Network decides")
        page.goto(f"{network.url}/admin/#/nodes")
        expect(page.get_by_test_id("nodes")).to_contain_text(NODE_NAME)
        expect(page.get_by_role("link", name=f"Statistics of {NODE_NAME}")).to_have_count(0)
        assert network_refusals_only(tab) == []

    def test_a_custom_role_is_created_on_the_roles_page_with_the_networks_capabilities(
        self, network: LiveNetwork, open_tab: Any
    ) -> None:
        tab, page = on_page(network, open_tab, "Roles")
        expect(page.get_by_role("heading", name="Roles", level=1)).to_be_visible()
        matrix = page.get_by_test_id("matrix")
        expect(matrix.locator("thead th")).to_have_text(
            ["Role", "Manage Nodes", "Manage users", "Edit roles", "Edit settings", "View statistics"])
        expect(page.get_by_role("checkbox", name="Owner: Edit roles")).to_be_checked()
        expect(page.get_by_role("checkbox", name="Owner: Edit roles")).to_be_disabled()  # a preset
        expect(page.get_by_role("checkbox", name="Administrator: Edit roles")).not_to_be_checked()
        expect(page.get_by_role("checkbox", name="Member: Manage Nodes")).not_to_be_checked()
        rules = page.get_by_role("region", name="The rules")
        expect(rules).to_contain_text("are not changed or deleted once made")
        expect(rules).to_contain_text("only capabilities you hold yourself")
        form = page.get_by_role("region", name="Create a role")
        form.get_by_label("Name").fill("Auditor")
        form.get_by_label("Description").fill("reads Node statistics and the audit log")
        form.get_by_role("checkbox", name="View statistics").check()
        form.get_by_role("button", name="Create role").click()
        expect(page.get_by_test_id("status")).to_have_text("Created the role Auditor.")
        expect(page.get_by_role("checkbox", name="Auditor: View statistics")).to_be_checked()
        expect(page.get_by_role("checkbox", name="Auditor: View statistics")).to_be_disabled()  # no PATCH on a Network
        expect(page.get_by_role("checkbox", name="Auditor: Manage Nodes")).not_to_be_checked()
        # what a Network's API cannot do is not offered: no saving, no deleting
        expect(matrix.get_by_role("button")).to_have_count(0)
        listed = httpx.get(f"{network.api}/roles", headers=network.headers, timeout=30).json()
        auditor = [r for r in listed if r["name"] == "Auditor"]
        assert [(r["capabilities"], r["description"], r["preset"]) for r in auditor] == [
            (["view_statistics"], "reads Node statistics and the audit log", False)]
        screenshot(page, "network-roles")
        form.get_by_label("Name").fill("Auditor")
        form.get_by_role("button", name="Create role").click()
        expect(form.get_by_role("alert")).to_contain_text("a role named 'Auditor' already exists")
        assert network_refusals_only(tab) == []  # the second Auditor's 409 only

    def test_an_administrator_without_edit_roles_neither_sees_roles_nor_creates_one(
        self, network: LiveNetwork, open_tab: Any
    ) -> None:
        tab = signed_in_as(network, open_tab, "no-roles@example.com", "Administrator")
        page = tab.page
        expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(
            ["Search", "Associations", "Invitations", "Nodes", "Users", "Audit log", "Account"])
        page.goto(f"{network.url}/admin/#/roles")  # by its address: the roles are read, nothing more
        expect(page.get_by_role("checkbox", name="Owner: Edit roles")).to_be_checked()
        expect(page.get_by_role("region", name="The rules")).to_contain_text(
            "Editing roles needs the capability “Edit roles”, which your role does not include.")
        expect(page.get_by_role("region", name="Create a role")).to_have_count(0)
        session = str(page.evaluate("sessionStorage.getItem('gridctl.admin.token')"))
        refused = httpx.post(f"{network.api}/roles", timeout=30, headers={"Authorization": f"Bearer {session}"},
                             json={"name": "Self-made", "capabilities": []})
        assert refused.status_code == 403
        assert refused.json()["details"]["missing"] == ["edit_roles"]
        listed = httpx.get(f"{network.api}/roles", headers=network.headers, timeout=30).json()
        assert "Self-made" not in [r["name"] for r in listed]
        tab.assert_no_errors()

    def test_an_api_token_made_on_the_account_page_works_until_revoked_and_signing_out_ends_the_session(
        self, network: LiveNetwork, open_tab: Any
    ) -> None:
        tab, page = on_page(network, open_tab, "Account")
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        you = page.get_by_role("region", name="You", exact=True)
        expect(you).to_contain_text(OWNER_EMAIL)
        expect(you).to_contain_text("Owner")
        expect(you).to_contain_text("decide association requests, invite Nodes and end associations")
        expect(page.get_by_role("region", name="Change your password")).to_have_count(0)  # no such call on a Network
        tokens = page.get_by_role("region", name="API tokens")
        expect(tokens).to_contain_text("GRIDCTL_NETWORK_TOKEN")
        expect(page.get_by_text("You have no API token.")).to_be_visible()
        tokens.get_by_label("Token name").fill("nightly-search")
        tokens.get_by_label("Expires after (days, empty: never)").fill("30")
        tokens.get_by_role("button", name="Create token").click()
        expect(page.get_by_test_id("status")).to_have_text("Token nightly-search created.")
        expect(tokens.get_by_text("Copy the secret now: it is not shown again.")).to_be_visible()
        secret = tokens.get_by_label("New token's secret").input_value()
        assert len(secret) >= 20
        tokens.get_by_role("button", name="Copy").click()
        expect(tokens.get_by_test_id("copied")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        bearer = {"Authorization": f"Bearer {secret}"}
        mine = httpx.get(f"{network.api}/users/me", headers=bearer, timeout=30)
        assert mine.status_code == 200
        assert mine.json()["email"] == OWNER_EMAIL
        assert httpx.get(f"{network.api}/associations", headers=bearer, timeout=30).status_code == 200
        table = page.get_by_test_id("tokens")
        expect(table.locator("thead th")).to_have_text(["Name", "Created", "Expires", "State", "Actions"])
        row = table.get_by_role("row").filter(has_text="nightly-search")
        expect(row).to_contain_text("active")
        screenshot(page, "network-account")
        listed = httpx.get(f"{network.api}/tokens", headers=network.headers, timeout=30).json()
        assert [(t["name"], t["revoked_at"]) for t in listed] == [("nightly-search", None)]
        tokens.get_by_role("button", name="Revoke nightly-search").click()
        expect(page.get_by_test_id("status")).to_have_text("Token nightly-search revoked.")
        expect(row).to_contain_text("revoked")
        assert httpx.get(f"{network.api}/users/me", headers=bearer, timeout=30).status_code == 401
        assert httpx.get(f"{network.api}/associations", headers=bearer, timeout=30).status_code == 401
        session = str(page.evaluate("sessionStorage.getItem('gridctl.admin.token')"))
        assert httpx.get(f"{network.api}/users/me", timeout=30,
                         headers={"Authorization": f"Bearer {session}"}).status_code == 200
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert httpx.get(f"{network.api}/users/me", timeout=30,
                         headers={"Authorization": f"Bearer {session}"}).status_code == 401
        tab.assert_no_errors()

    @pytest.mark.parametrize("width", [1280, 800])
    def test_every_new_page_loads_without_console_errors_or_sideways_scrolling(
        self, deployment: tuple[LiveNetwork, LiveNode], open_tab: Any, width: int
    ) -> None:
        network, node = deployment
        pages = [(f"{network.url}/admin/#{path}", title) for path, title in NETWORK_PAGES.items()]
        pages.append((f"{node.url}/admin/#/networks", "Networks"))
        on_network, on_node = open_tab(width=width), open_tab(width=width)
        sign_in(on_network, f"{network.url}/admin/")
        sign_in(on_node, f"{node.url}/admin/")
        for url, title in pages:
            page = (on_node if url.startswith(node.url) else on_network).page
            page.goto(url)
            expect(page.get_by_role("heading", level=1)).to_have_text(title)
            expect(page.get_by_text("Loading…")).to_have_count(0)
            expect(page).to_have_title(f"{title} · gridctl Admin")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{url} at {width} px scrolls sideways by {overflow} px"
        on_network.assert_no_errors()
        on_node.assert_no_errors()

    def test_the_node_leaves_after_a_confirmation(self, deployment: tuple[LiveNetwork, LiveNode], network_name: str,
                                                 open_tab: Any) -> None:
        network, node = deployment
        tab = open_tab()
        sign_in(tab, f"{node.url}/admin/")
        page = tab.page
        page.goto(f"{node.url}/admin/#/networks")
        page.get_by_role("button", name=f"Leave {network_name}").click()
        page.get_by_role("button", name="Keep it").click()
        expect(page.get_by_test_id("association-state")).to_have_text(
            "approved: this Node's catalogue is searchable there")
        page.get_by_role("button", name=f"Leave {network_name}").click()
        page.get_by_role("button", name="Yes, leave").click()
        expect(page.get_by_test_id("status")).to_have_text(f"Left {network_name}.")
        expect(page.get_by_test_id("association-state")).to_have_text("ended")
        expect(page.get_by_role("button", name=f"Sync with {network_name} now")).to_have_count(0)
        listed = httpx.get(f"{network.api}/associations", headers=network.headers, timeout=30).json()
        assert {a["node_name"]: a["state"] for a in listed}[NODE_NAME] == "ended"
        found = httpx.get(f"{network.api}/search", params={"text": "handwritten"}, headers=network.headers,
                          timeout=30).json()
        assert found["total"] == 0
        tab.assert_no_errors()
