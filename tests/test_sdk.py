"""The Python SDK against a real Node: gridctl.connect, the Node facade's sub-APIs, typed errors."""

from __future__ import annotations

import itertools

import pytest

import gridctl
from gridctl.sdk import errors
from gridctl.sdk.node import Node
from tests.live import OWNER_EMAIL, OWNER_PASSWORD, LiveNode, free_port

_seq = itertools.count(1)
PASSWORD = "a long enough password"


def new_email() -> str:
    return f"sdk{next(_seq)}@example.com"


@pytest.fixture
def owner(live_node: LiveNode) -> Node:
    node = gridctl.connect(live_node.url, token=live_node.owner_token)
    yield node
    node.close()


class TestConnect:
    def test_with_email_and_password_logs_in(self, live_node: LiveNode) -> None:
        with gridctl.connect(live_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD) as node:
            assert node.users.me()["email"] == OWNER_EMAIL

    def test_with_a_token_uses_it(self, owner: Node) -> None:
        assert owner.users.me()["email"] == OWNER_EMAIL

    def test_accepts_the_api_prefix_and_a_trailing_slash(self, live_node: LiveNode) -> None:
        with gridctl.connect(f"{live_node.api}/", token=live_node.owner_token) as node:
            assert node.url == live_node.url

    def test_wrong_password_raises_unauthorized(self, live_node: LiveNode) -> None:
        with pytest.raises(errors.Unauthorized) as caught:
            gridctl.connect(live_node.url, email=OWNER_EMAIL, password="not the password")
        assert caught.value.status == 401
        assert caught.value.code == "unauthorized"

    def test_needs_a_token_or_credentials(self, live_node: LiveNode) -> None:
        with pytest.raises(errors.GridctlError, match="needs token"):
            gridctl.connect(live_node.url)

    def test_refuses_both_a_token_and_credentials(self, live_node: LiveNode) -> None:
        with pytest.raises(errors.GridctlError, match="not both"):
            gridctl.connect(live_node.url, token="x", email=OWNER_EMAIL, password=OWNER_PASSWORD)

    def test_refuses_a_url_without_a_scheme(self) -> None:
        with pytest.raises(errors.GridctlError, match="not a Node URL") as caught:
            gridctl.connect("127.0.0.1:8000", token="x")
        assert caught.value.code == "usage"

    def test_closed_port_raises_connection_failed(self) -> None:
        node = gridctl.connect(f"http://127.0.0.1:{free_port()}", token="secret-token-value")
        with pytest.raises(errors.ConnectionFailed) as caught:
            node.users.me()
        assert caught.value.code == "connection_failed"
        assert "secret-token-value" not in str(caught.value)


class TestLogout:
    def test_revokes_the_session_token(self, live_node: LiveNode) -> None:
        node = gridctl.connect(live_node.url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
        token = node.http.client.headers["Authorization"].removeprefix("Bearer ")
        node.logout()
        with Node(live_node.url, token=token) as stale, pytest.raises(errors.Unauthorized):
            stale.users.me()


class TestUsers:
    def test_create_get_update_disable_remove(self, owner: Node, live_node: LiveNode) -> None:
        email = new_email()
        created = owner.users.create(email, PASSWORD, full_name="Ada")
        assert created["role"]["name"] == "Data Scientist"
        assert owner.users.get(email)["id"] == created["id"]
        assert owner.users.get(created["id"])["email"] == email
        assert owner.users.update(email, full_name="Ada L.")["full_name"] == "Ada L."
        with gridctl.connect(live_node.url, email=email, password=PASSWORD) as scientist:
            assert scientist.users.me()["email"] == email
        assert owner.users.disable(email)["disabled"] is True
        with pytest.raises(errors.Unauthorized):
            gridctl.connect(live_node.url, email=email, password=PASSWORD)
        owner.users.remove(email)
        with pytest.raises(errors.NotFound) as caught:
            owner.users.get(email)
        assert caught.value.status == 404

    def test_list_filters_by_search(self, owner: Node) -> None:
        email = new_email()
        owner.users.create(email, PASSWORD)
        assert [u["email"] for u in owner.users.list(q=email)] == [email]
        page = owner.users.page(limit=1)
        assert set(page) == {"items", "total", "limit", "offset"} and len(page["items"]) == 1

    def test_set_budget(self, owner: Node) -> None:
        email = new_email()
        owner.users.create(email, PASSWORD)
        assert owner.users.set_budget(email, 2.5)["budget_epsilon"] == 2.5

    def test_duplicate_email_raises_already_exists(self, owner: Node) -> None:
        email = new_email()
        owner.users.create(email, PASSWORD)
        with pytest.raises(errors.AlreadyExists) as caught:
            owner.users.create(email, PASSWORD)
        assert caught.value.status == 409

    def test_bad_email_raises_invalid_input(self, owner: Node) -> None:
        with pytest.raises(errors.InvalidInput) as caught:
            owner.users.create("not-an-email", PASSWORD)
        assert caught.value.status == 422

    def test_data_scientist_listing_users_raises_forbidden(self, owner: Node, live_node: LiveNode) -> None:
        email = new_email()
        owner.users.create(email, PASSWORD)
        with gridctl.connect(live_node.url, email=email, password=PASSWORD) as scientist, \
                pytest.raises(errors.Forbidden) as caught:
            scientist.users.list()
        assert caught.value.status == 403


class TestRolesAndGroups:
    def test_custom_role_lifecycle(self, owner: Node) -> None:
        name = f"sdk-role-{next(_seq)}"
        role = owner.roles.create(name, ["view_statistics"], description="reads the stats")
        assert role["capabilities"] == ["view_statistics"] and role["preset"] is False
        assert name in [r["name"] for r in owner.roles.list()]
        updated = owner.roles.update(name, capabilities=["view_statistics", "triage_requests"])
        assert set(updated["capabilities"]) == {"view_statistics", "triage_requests"}
        assert set(owner.roles.get(role["id"])["capabilities"]) == {"view_statistics", "triage_requests"}
        owner.roles.remove(name)
        with pytest.raises(errors.NotFound):
            owner.roles.get(name)

    def test_group_membership(self, owner: Node) -> None:
        email, name = new_email(), f"sdk-group-{next(_seq)}"
        owner.users.create(email, PASSWORD)
        owner.groups.create(name, description="cohort")
        assert [m["email"] for m in owner.groups.add_member(name, email)["members"]] == [email]
        assert name in owner.users.get(email)["groups"]
        assert owner.groups.remove_member(name, email)["members"] == []
        owner.groups.remove(name)
        with pytest.raises(errors.NotFound):
            owner.groups.get(name)


class TestTokensAndAudit:
    def test_api_token_works_until_revoked(self, owner: Node, live_node: LiveNode) -> None:
        name = f"ci-{next(_seq)}"
        created = owner.tokens.create(name, expires_in_days=7)
        with gridctl.connect(live_node.url, token=created["token"]) as ci:
            assert ci.users.me()["email"] == OWNER_EMAIL
            assert name in [t["name"] for t in owner.tokens.list()]
            assert "token" not in owner.tokens.list()[0]
            assert owner.tokens.revoke(name)["revoked_at"] is not None
            with pytest.raises(errors.Unauthorized):
                ci.users.me()

    def test_audit_lists_a_user_creation(self, owner: Node) -> None:
        email = new_email()
        created = owner.users.create(email, PASSWORD)
        events = owner.audit.list(action="user.created", target_type="user", target_id=created["id"])
        assert [e["actor_email"] for e in events] == [OWNER_EMAIL]
