"""``gridctl users`` against a real Node."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.clitools import Gridctl, as_owner
from tests.live import LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"
USER_KEYS = {"id", "email", "full_name", "role", "capabilities", "budget_epsilon", "disabled", "created_at",
             "groups"}


def new_email() -> str:
    return f"cli-user{next(_seq)}@example.com"


@pytest.fixture
def owner(live_node: LiveNode, tmp_path: Path) -> Gridctl:
    return as_owner(live_node, tmp_path / "home")


class TestUsersAdd:
    def test_new_data_scientist_can_log_in(self, owner: Gridctl, live_node: LiveNode, tmp_path: Path) -> None:
        email = new_email()
        result = owner("users", "add", "--email", email, "--password", PASSWORD)
        assert result.exit_code == 0, result.stderr
        assert f"user {email} created" in result.stderr
        scientist = Gridctl(home=tmp_path / "scientist")
        login = scientist("login", live_node.url, "--email", email, "--password", PASSWORD)
        assert login.exit_code == 0, login.stderr
        me = scientist.json("users", "me")
        assert me["email"] == email
        assert me["role"]["name"] == "Data Scientist"

    def test_prompts_for_a_hidden_password_twice(self, owner: Gridctl, live_node: LiveNode) -> None:
        email = new_email()
        result = owner("users", "add", "--email", email, input=f"{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.stderr
        assert PASSWORD not in result.output
        assert live_node.login(email, PASSWORD)

    def test_mismatched_confirmation_asks_again(self, owner: Gridctl) -> None:
        email = new_email()
        result = owner("users", "add", "--email", email, input=f"{PASSWORD}\nother\n{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.stderr
        assert "do not match" in result.stderr

    def test_json_output_is_the_user(self, owner: Gridctl) -> None:
        email = new_email()
        user = owner.json("users", "add", "--email", email, "--password", PASSWORD, "--role", "Compliance Officer",
                          "--budget", "3")
        assert set(user) == USER_KEYS
        assert user["email"] == email
        assert user["role"]["name"] == "Compliance Officer"
        assert user["budget_epsilon"] == 3

    def test_duplicate_email_exits_6(self, owner: Gridctl) -> None:
        email = new_email()
        assert owner("users", "add", "--email", email, "--password", PASSWORD).exit_code == 0
        result = owner("users", "add", "--email", email, "--password", PASSWORD)
        assert result.exit_code == 6
        assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) == 1

    def test_invalid_email_exits_7(self, owner: Gridctl) -> None:
        result = owner("users", "add", "--email", "nope", "--password", PASSWORD)
        assert result.exit_code == 7
        assert "email" in result.stderr

    def test_unknown_role_exits_5_like_roles_show_naming_it(self, owner: Gridctl) -> None:
        email = new_email()
        result = owner("users", "add", "--email", email, "--password", PASSWORD, "--role", "Wizard")
        assert result.exit_code == 5 == owner("roles", "show", "Wizard").exit_code
        assert "Wizard" in result.stderr
        assert owner("users", "show", email).exit_code == 5  # nothing was created


class TestUsersList:
    def test_json_is_a_list_of_users(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        users = owner.json("users", "list", "--search", email)
        assert [u["email"] for u in users] == [email]
        assert set(users[0]) == USER_KEYS

    def test_table_shows_emails_and_role_names(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        result = owner("users", "list", "--search", email)
        assert result.exit_code == 0, result.stderr
        assert email in result.stdout and "Data Scientist" in result.stdout

    def test_limit_notes_the_rest(self, owner: Gridctl) -> None:
        owner("users", "add", "--email", new_email(), "--password", PASSWORD)
        result = owner("users", "list", "--limit", "1")
        assert result.exit_code == 0
        assert "rows 1-1 of" in result.stderr
        assert len(owner.json("users", "list", "--limit", "1")) == 1

    def test_filters_by_role(self, owner: Gridctl) -> None:
        users = owner.json("users", "list", "--role", "Owner")
        assert [u["role"]["name"] for u in users] == ["Owner"]

    def test_data_scientist_is_forbidden_exit_4(self, owner: Gridctl, live_node: LiveNode) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        result = owner("users", "list", GRIDCTL_TOKEN=live_node.login(email, PASSWORD))
        assert result.exit_code == 4
        assert result.stderr.startswith("error:")


class TestUsersShowUpdateDisableRemove:
    def test_show_by_email_and_by_id(self, owner: Gridctl) -> None:
        email = new_email()
        user = owner.json("users", "add", "--email", email, "--password", PASSWORD)
        assert owner.json("users", "show", email)["id"] == user["id"]
        assert owner.json("users", "show", str(user["id"]))["email"] == email

    def test_show_unknown_user_exits_5(self, owner: Gridctl) -> None:
        result = owner("users", "show", "nobody@example.com")
        assert result.exit_code == 5
        assert result.stderr.startswith("error:")

    def test_update_changes_name_and_role(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        user = owner.json("users", "update", email, "--full-name", "Grace", "--role", "Compliance Officer")
        assert user["full_name"] == "Grace" and user["role"]["name"] == "Compliance Officer"

    def test_update_without_changes_is_a_usage_error(self, owner: Gridctl) -> None:
        assert owner("users", "update", "someone@example.com").exit_code == 2

    def test_disabled_user_cannot_log_in_until_enabled(self, owner: Gridctl, live_node: LiveNode,
                                                       tmp_path: Path) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        assert owner.json("users", "disable", email)["disabled"] is True
        scientist = Gridctl(home=tmp_path / "scientist")
        refused = scientist("login", live_node.url, "--email", email, "--password", PASSWORD)
        assert refused.exit_code == 3
        assert owner.json("users", "update", email, "--enable")["disabled"] is False
        assert scientist("login", live_node.url, "--email", email, "--password", PASSWORD).exit_code == 0

    def test_remove_with_yes(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        assert owner.json("users", "remove", email, "--yes") == {"removed": "user", "ref": email}
        assert owner("users", "show", email).exit_code == 5

    def test_remove_asks_and_keeps_the_user_when_declined(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        result = owner("users", "remove", email, input="n\n")
        assert result.exit_code == 1
        assert owner("users", "show", email).exit_code == 0
        assert owner("users", "remove", email, input="y\n").exit_code == 0
        assert owner("users", "show", email).exit_code == 5

    def test_remove_without_a_terminal_needs_yes(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        result = owner("users", "remove", email)
        assert result.exit_code == 2
        assert "--yes" in result.stderr
        assert owner("users", "show", email).exit_code == 0

    def test_removing_yourself_is_a_conflict_exit_6(self, owner: Gridctl) -> None:
        result = owner("users", "remove", "owner@example.com", "--yes")
        assert result.exit_code == 6
        assert "your own account" in result.stderr


class TestUsersSetBudgetAndPassword:
    def test_set_budget(self, owner: Gridctl) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        assert owner.json("users", "set-budget", email, "1.5")["budget_epsilon"] == 1.5

    def test_negative_budget_is_a_usage_error(self, owner: Gridctl) -> None:
        assert owner("users", "set-budget", "x@example.com", "--", "-1").exit_code == 2

    def test_reset_password_lets_the_user_log_in_with_the_new_one(self, owner: Gridctl,
                                                                   live_node: LiveNode) -> None:
        email = new_email()
        owner("users", "add", "--email", email, "--password", PASSWORD)
        new_password = "another long password"
        result = owner("users", "reset-password", email, input=f"{new_password}\n{new_password}\n")
        assert result.exit_code == 0, result.stderr
        assert live_node.login(email, new_password)
