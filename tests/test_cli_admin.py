"""``gridctl roles``, ``groups``, ``tokens`` and ``audit`` against a real Node."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from gridctl.cli import exit_codes
from tests.clitools import Gridctl, as_owner
from tests.live import OWNER_EMAIL, LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"


@pytest.fixture
def owner(live_node: LiveNode, tmp_path: Path) -> Gridctl:
    return as_owner(live_node, tmp_path / "home")


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_seq)}"


class TestRoles:
    def test_list_has_the_presets(self, owner: Gridctl) -> None:
        roles = {r["name"]: r for r in owner.json("roles", "list")}
        assert {"Owner", "Administrator", "Compliance Officer", "Data Scientist"} <= set(roles)
        assert set(roles["Owner"]) == {"id", "name", "description", "capabilities", "preset", "user_count"}
        assert roles["Owner"]["preset"] is True

    def test_add_show_update_remove(self, owner: Gridctl) -> None:
        name = unique("auditors")
        role = owner.json("roles", "add", name, "-c", "view_statistics,triage_requests", "--description", "d")
        assert set(role["capabilities"]) == {"view_statistics", "triage_requests"}
        assert owner.json("roles", "show", str(role["id"]))["name"] == name
        granted = owner.json("roles", "update", name, "--grant", "manage_groups", "--revoke", "triage_requests")
        assert set(granted["capabilities"]) == {"view_statistics", "manage_groups"}
        renamed = owner.json("roles", "update", name, "--name", f"{name}-x", "-c", "view_statistics")
        assert renamed["name"] == f"{name}-x" and renamed["capabilities"] == ["view_statistics"]
        assert owner.json("roles", "remove", f"{name}-x", "--yes") == {"removed": "role", "ref": f"{name}-x"}
        assert owner("roles", "show", f"{name}-x").exit_code == exit_codes.NOT_FOUND

    def test_table_lists_capabilities(self, owner: Gridctl) -> None:
        result = owner("roles", "show", "Compliance Officer")
        assert result.exit_code == 0 and "view_statistics" in result.stdout

    def test_preset_cannot_be_removed_exit_4(self, owner: Gridctl) -> None:
        assert owner("roles", "remove", "Data Scientist", "--yes").exit_code == exit_codes.FORBIDDEN

    def test_role_in_use_cannot_be_removed_exit_6(self, owner: Gridctl) -> None:
        name = unique("busy")
        owner("roles", "add", name, "-c", "view_statistics")
        owner("users", "add", "--email", f"{name}@example.com", "--password", PASSWORD, "--role", name)
        assert owner("roles", "remove", name, "--yes").exit_code == exit_codes.CONFLICT

    def test_capability_and_grant_together_is_a_usage_error(self, owner: Gridctl) -> None:
        result = owner("roles", "update", "x", "-c", "a", "--grant", "b")
        assert result.exit_code == exit_codes.USAGE


class TestGroups:
    def test_add_members_show_remove(self, owner: Gridctl) -> None:
        name, email = unique("cohort"), f"{unique('member')}@example.com"
        owner("users", "add", "--email", email, "--password", PASSWORD)
        group = owner.json("groups", "add", name, "--description", "study cohort")
        assert set(group) >= {"id", "name", "description", "created_at", "member_count"}
        detail = owner.json("groups", "add-member", name, email)
        assert [m["email"] for m in detail["members"]] == [email] and detail["member_count"] == 1
        assert name in [g["name"] for g in owner.json("groups", "list", "--search", name)]
        shown = owner("groups", "show", name)
        assert shown.exit_code == 0 and email in shown.stdout
        assert owner.json("groups", "remove-member", name, email)["members"] == []
        assert owner.json("groups", "remove", name, "--yes") == {"removed": "group", "ref": name}
        assert owner("groups", "show", name).exit_code == exit_codes.NOT_FOUND

    def test_duplicate_name_exits_6(self, owner: Gridctl) -> None:
        name = unique("twice")
        assert owner("groups", "add", name).exit_code == 0
        assert owner("groups", "add", name).exit_code == exit_codes.CONFLICT

    def test_member_unknown_user_exits_5(self, owner: Gridctl) -> None:
        name = unique("lonely")
        owner("groups", "add", name)
        assert owner("groups", "add-member", name, "ghost@example.com").exit_code == exit_codes.NOT_FOUND


class TestTokens:
    def test_create_shows_the_secret_once_and_it_works(self, owner: Gridctl, live_node: LiveNode,
                                                        tmp_path: Path) -> None:
        name = unique("ci")
        created = owner.json("tokens", "create", name, "--expires-in-days", "30")
        assert {"id", "name", "created_at", "expires_at", "revoked_at", "last_used_at", "token"} <= set(created)
        ci = Gridctl(home=tmp_path / "ci", url=live_node.url, token=created["token"])
        assert ci.json("users", "me")["email"] == OWNER_EMAIL
        listed = owner("tokens", "list", "-o", "json")
        assert name in [t["name"] for t in json.loads(listed.stdout)]
        assert created["token"] not in listed.output
        revoked = owner.json("tokens", "revoke", name)
        assert revoked["revoked_at"] is not None
        assert ci("users", "me").exit_code == exit_codes.AUTH

    def test_table_mode_prints_the_secret_on_stderr_only(self, owner: Gridctl) -> None:
        result = owner("tokens", "create", unique("table"))
        assert result.exit_code == 0
        assert "Shown once" in result.stderr and "token: " in result.stderr
        assert "token: " not in result.stdout

    def test_revoke_unknown_token_exits_5(self, owner: Gridctl) -> None:
        assert owner("tokens", "revoke", "never-made").exit_code == exit_codes.NOT_FOUND


class TestAudit:
    def test_filters_by_action_and_target(self, owner: Gridctl) -> None:
        email = f"{unique('audited')}@example.com"
        user = owner.json("users", "add", "--email", email, "--password", PASSWORD)
        events = owner.json("audit", "--action", "user.created", "--target-type", "user",
                            "--target-id", str(user["id"]))
        assert len(events) == 1
        assert set(events[0]) == {"id", "at", "actor_id", "actor_email", "action", "target_type", "target_id",
                                  "client_address", "details"}
        assert events[0]["actor_email"] == OWNER_EMAIL
        assert PASSWORD not in json.dumps(events)

    def test_newest_first_with_limit(self, owner: Gridctl) -> None:
        owner("groups", "add", unique("first"))
        owner("groups", "add", unique("second"))
        events = owner.json("audit", "--actor", OWNER_EMAIL, "--limit", "2")
        assert len(events) == 2 and events[0]["at"] >= events[1]["at"]

    def test_data_scientist_is_forbidden_exit_4(self, owner: Gridctl, live_node: LiveNode) -> None:
        email = f"{unique('nosy')}@example.com"
        owner("users", "add", "--email", email, "--password", PASSWORD)
        result = owner("audit", GRIDCTL_TOKEN=live_node.login(email, PASSWORD))
        assert result.exit_code == exit_codes.FORBIDDEN
