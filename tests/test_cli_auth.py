"""``gridctl login``, ``logout`` and ``context``; GRIDCTL_URL/GRIDCTL_TOKEN overrides; exit codes; secrets."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
import yaml

from gridctl.cli import exit_codes
from tests.clitools import Gridctl, as_owner
from tests.live import OWNER_EMAIL, OWNER_PASSWORD, LiveNode, free_port


@pytest.fixture
def cli(tmp_path: Path) -> Gridctl:
    return Gridctl(home=tmp_path / "home")


def login(cli: Gridctl, live_node: LiveNode, *extra: str) -> None:
    result = cli("login", live_node.url, "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD, *extra)
    assert result.exit_code == 0, result.stderr


def saved(cli: Gridctl) -> dict:
    return yaml.safe_load((cli.home / "contexts.yaml").read_text())


def host_port(live_node: LiveNode) -> str:
    return live_node.url.removeprefix("http://")


class TestLogin:
    def test_saves_a_current_context_named_host_port(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node)
        contexts = saved(cli)
        assert contexts["current"] == host_port(live_node)
        context = contexts["contexts"][host_port(live_node)]
        assert context["url"] == live_node.url and context["email"] == OWNER_EMAIL and context["token"]
        assert cli.json("users", "me")["email"] == OWNER_EMAIL

    def test_contexts_file_is_owner_only(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node)
        assert stat.S_IMODE((cli.home / "contexts.yaml").stat().st_mode) == 0o600

    def test_context_name_option(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node, "--context-name", "prod")
        assert saved(cli)["current"] == "prod"

    def test_prompts_for_the_password(self, cli: Gridctl, live_node: LiveNode) -> None:
        result = cli("login", live_node.url, "--email", OWNER_EMAIL, input=f"{OWNER_PASSWORD}\n")
        assert result.exit_code == 0, result.stderr
        assert OWNER_PASSWORD not in result.output

    def test_reads_the_password_from_gridctl_password(self, cli: Gridctl, live_node: LiveNode) -> None:
        result = cli("login", live_node.url, "--email", OWNER_EMAIL, GRIDCTL_PASSWORD=OWNER_PASSWORD)
        assert result.exit_code == 0, result.stderr

    def test_json_output_never_holds_the_token(self, cli: Gridctl, live_node: LiveNode) -> None:
        result = cli("login", live_node.url, "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD, "-o", "json")
        body = json.loads(result.stdout)
        assert set(body) == {"context", "url", "email", "user_id", "expires_at"}
        token = saved(cli)["contexts"][body["context"]]["token"]
        assert token not in result.output

    def test_wrong_password_exits_3_and_saves_nothing(self, cli: Gridctl, live_node: LiveNode) -> None:
        result = cli("login", live_node.url, "--email", OWNER_EMAIL, "--password", "wrong password!")
        assert result.exit_code == exit_codes.AUTH
        assert "wrong password!" not in result.output
        assert not (cli.home / "contexts.yaml").exists()


class TestLogout:
    def test_revokes_the_token_and_removes_the_context(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node)
        token = saved(cli)["contexts"][host_port(live_node)]["token"]
        result = cli("logout")
        assert result.exit_code == 0, result.stderr
        assert saved(cli)["contexts"] == {}
        me = httpx.get(f"{live_node.api}/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        assert cli("users", "me").exit_code == exit_codes.AUTH

    def test_keeps_a_deployed_context_without_its_token(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node, "--context-name", "local")
        contexts = saved(cli)
        contexts["contexts"]["local"]["deployment"] = "local"
        (cli.home / "contexts.yaml").write_text(yaml.safe_dump(contexts))
        assert cli("logout").exit_code == 0
        context = saved(cli)["contexts"]["local"]
        assert context["token"] == "" and context["url"] == live_node.url
        result = cli("users", "me")
        assert result.exit_code == exit_codes.AUTH
        assert "gridctl login" in result.stderr

    def test_without_a_context_exits_3(self, cli: Gridctl) -> None:
        assert cli("logout").exit_code == exit_codes.AUTH


class TestContext:
    def test_list_use_show(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node, "--context-name", "one")
        login(cli, live_node, "--context-name", "two")
        rows = cli.json("context", "list")
        assert [(r["name"], r["current"]) for r in rows] == [("one", False), ("two", True)]
        assert all(set(r) == {"current", "name", "url", "email", "deployment", "logged_in"} for r in rows)
        assert cli("context", "use", "one").exit_code == 0
        shown = cli.json("context", "show")
        assert shown["name"] == "one" and shown["source"] == "context" and shown["logged_in"] is True

    def test_list_never_shows_tokens(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node)
        token = saved(cli)["contexts"][host_port(live_node)]["token"]
        for output in ("table", "json"):
            result = cli("context", "list", "-o", output)
            assert result.exit_code == 0 and token not in result.output
            assert token not in cli("context", "show", "-o", output).output

    def test_use_unknown_context_exits_3(self, cli: Gridctl) -> None:
        result = cli("context", "use", "nowhere")
        assert result.exit_code == exit_codes.AUTH
        assert "nowhere" in result.stderr

    def test_global_context_option_selects_a_context(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node, "--context-name", "good")
        contexts = saved(cli)
        contexts["contexts"]["stale"] = {**contexts["contexts"]["good"], "token": "stale-token"}
        (cli.home / "contexts.yaml").write_text(yaml.safe_dump(contexts))
        assert cli("--context", "stale", "users", "me").exit_code == exit_codes.AUTH
        assert cli("--context", "good", "users", "me").exit_code == 0

    def test_remove_forgets_a_context(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node, "--context-name", "gone")
        assert cli("context", "remove", "gone").exit_code == 0
        assert cli.json("context", "list") == []

    def test_show_reports_environment_overrides(self, cli: Gridctl, live_node: LiveNode) -> None:
        shown = cli.json("context", "show", GRIDCTL_URL=live_node.url, GRIDCTL_TOKEN="x")
        assert shown["source"] == "GRIDCTL_URL" and shown["url"] == live_node.url


class TestEnvironmentOverrides:
    def test_gridctl_url_and_token_win_over_the_context(self, cli: Gridctl, live_node: LiveNode) -> None:
        login(cli, live_node)
        token = cli.json("tokens", "create", "override-check")["token"]
        other = Gridctl(home=cli.home, url=f"http://127.0.0.1:{free_port()}", token="nope")
        assert other("users", "me").exit_code == exit_codes.CONNECTION
        assert cli.json("users", "me", GRIDCTL_TOKEN=token)["email"] == OWNER_EMAIL

    def test_no_context_and_no_environment_exits_3(self, cli: Gridctl) -> None:
        result = cli("users", "list")
        assert result.exit_code == exit_codes.AUTH
        assert "gridctl login" in result.stderr


class TestExitCodesAndErrors:
    """One readable line on stderr, a documented exit code, never a traceback or a secret."""

    @pytest.fixture
    def owner(self, live_node: LiveNode, tmp_path: Path) -> Gridctl:
        return as_owner(live_node, tmp_path / "owner")

    def test_bad_token_exits_3(self, live_node: LiveNode, tmp_path: Path) -> None:
        secret = "gapi_not-a-real-token-but-secret"
        result = Gridctl(home=tmp_path, url=live_node.url, token=secret)("users", "me")
        assert result.exit_code == exit_codes.AUTH
        assert secret not in result.output

    def test_forbidden_exits_4(self, owner: Gridctl, live_node: LiveNode) -> None:
        owner("users", "add", "--email", "exit4@example.com", "--password", "a long enough password")
        token = live_node.login("exit4@example.com", "a long enough password")
        result = owner("roles", "add", "sneaky", "-c", "manage_users", GRIDCTL_TOKEN=token)
        assert result.exit_code == exit_codes.FORBIDDEN
        assert token not in result.output

    def test_not_found_exits_5(self, owner: Gridctl) -> None:
        assert owner("groups", "show", "no-such-group").exit_code == exit_codes.NOT_FOUND

    def test_conflict_exits_6(self, owner: Gridctl) -> None:
        assert owner("roles", "add", "Owner").exit_code == exit_codes.CONFLICT

    def test_invalid_input_exits_7(self, owner: Gridctl) -> None:
        assert owner("roles", "add", "bad-caps", "-c", "fly").exit_code == exit_codes.INVALID

    def test_usage_error_exits_2(self, owner: Gridctl) -> None:
        assert owner("users", "add").exit_code == exit_codes.USAGE

    def test_closed_port_exits_9_without_the_token(self, tmp_path: Path) -> None:
        secret = "gapi_secret-that-must-not-show"
        cli = Gridctl(home=tmp_path, url=f"http://127.0.0.1:{free_port()}", token=secret)
        result = cli("users", "list")
        assert result.exit_code == exit_codes.CONNECTION
        assert result.stderr.startswith("error: cannot reach")
        assert len(result.stderr.strip().splitlines()) == 1
        assert secret not in result.output and "Traceback" not in result.output

    def test_bad_url_is_a_usage_error(self, tmp_path: Path) -> None:
        result = Gridctl(home=tmp_path, url="localhost:1", token="t")("users", "list")
        assert result.exit_code == exit_codes.USAGE
        assert "not a Node URL" in result.stderr


class TestConsoleScript:
    """The installed ``gridctl`` script, run as a shell would."""

    def test_login_and_list_users_as_json(self, live_node: LiveNode, tmp_path: Path) -> None:
        cli = Gridctl(home=tmp_path)
        logged_in = cli.subprocess("login", live_node.url, "--email", OWNER_EMAIL, "--password", OWNER_PASSWORD)
        assert logged_in.returncode == 0, logged_in.stderr
        listed = cli.subprocess("users", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        assert OWNER_EMAIL in [u["email"] for u in json.loads(listed.stdout)]

    def test_connection_error_is_one_line_and_exit_9(self, tmp_path: Path) -> None:
        secret = "gapi_subprocess-secret"
        cli = Gridctl(home=tmp_path, url=f"http://127.0.0.1:{free_port()}", token=secret)
        result = cli.subprocess("users", "list")
        assert result.returncode == exit_codes.CONNECTION
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert secret not in result.stderr and "Traceback" not in result.stderr

    def test_help_lists_exit_codes_and_environment(self, tmp_path: Path) -> None:
        result = Gridctl(home=tmp_path).subprocess("--help", COLUMNS="200")
        assert result.returncode == 0
        text = " ".join(result.stdout.split())  # however the help wraps
        assert "Exit codes" in text and "9 connection error" in text
        assert "GRIDCTL_URL" in text and "GRIDCTL_TOKEN" in text
