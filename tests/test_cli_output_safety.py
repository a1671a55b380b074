"""Output that cannot be hijacked: text from users and from the Node comes out literally, never as markup.

Every command that prints server or user text is fed Rich markup (``[/]``, ``[bold]x``, ``Eve [admin]``),
ANSI escape sequences, control characters, a bidi override, right-to-left script and very long text, against
a real Node. Nothing may crash; markup must print as typed; control characters must print as visible escapes
(``\\x1b``) and never reach the terminal raw; JSON must give back the exact text.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from gridctl.cli import console, exit_codes
from tests.clitools import Gridctl, as_owner
from tests.live import LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"

MARKUP = "please [/] thanks [bold]x Eve [admin] [link=http://e]y[/link] :smile:"
CONTROLS = "r\x1b[31mX\x1b[0m b\x07 c\x9b2J \r \nx\u202eolleh"
RTL = "שלום مرحبا"
HOSTILE = f"{MARKUP} {CONTROLS} {RTL}"
SHOWN = f"{MARKUP} r\\x1b[31mX\\x1b[0m b\\x07 c\\x9b2J \\r \\nx\\u202eolleh {RTL}"
# For names (at most 64 characters on the Node; no "/", which no name in a URL path can hold).
NAME = "Eve [admin] [bold]x \x1b[31m\u202eשלום"
NAME_SHOWN = "Eve [admin] [bold]x \\x1b[31m\\u202eשלום"
RAW = ("\x1b", "\x9b", "\x07", "\u202e", "\r")
WIDE = "4000"  # wide enough that no cell wraps, so texts can be found whole


def inert(result: Result, *expected: str, code: int = exit_codes.OK) -> str:
    """The command exited with ``code``, printed no raw control character, and printed each of ``expected``."""
    assert result.exit_code == code, f"exit {result.exit_code}: {result.stderr}"
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    for char in RAW:
        assert char not in out, f"{char!r} reached the terminal raw"
    for text in expected:
        assert text in out, f"{text!r} not printed literally in:\n{out}"
    return out


def new_email() -> str:
    return f"safety{next(_seq)}@example.com"


@pytest.fixture(scope="module")
def world(live_node: LiveNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An owner, and a scientist named with hostile text; a hostile tensor, group and role."""
    home = tmp_path_factory.mktemp("safety")
    owner = as_owner(live_node, home / "owner")
    owner.env["COLUMNS"] = WIDE
    email = new_email()
    user = owner.json("users", "add", "--email", email, "--password", PASSWORD, "--full-name", HOSTILE,
                      "--budget", "2")
    scientist = Gridctl(home=home / "scientist", url=live_node.url, token=live_node.login(email, PASSWORD),
                        env={"COLUMNS": WIDE})
    csv = home / "f.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    tensor = owner.json("tensors", "upload", str(csv), "--name", NAME, "--description", HOSTILE)
    return {"owner": owner, "scientist": scientist, "email": email, "user": user, "tensor": tensor, "csv": csv,
            "home": home}


class TestUsers:
    def test_json_gives_back_the_exact_text(self, world: dict[str, Any]) -> None:
        assert world["user"]["full_name"] == HOSTILE
        shown = world["owner"].json("users", "show", world["email"])
        assert shown["full_name"] == HOSTILE

    def test_raw_json_carries_no_terminal_control_character(self, world: dict[str, Any]) -> None:
        result = world["owner"]("users", "show", world["email"], "--output", "json")
        for char in RAW:
            assert char not in result.stdout
        assert json.loads(result.stdout)["full_name"] == HOSTILE

    @pytest.mark.parametrize("args", [["users", "show"], ["users", "list", "--search"]])
    def test_tables_print_it_literally(self, world: dict[str, Any], args: list[str]) -> None:
        inert(world["owner"](*args, world["email"]), SHOWN)

    def test_me_prints_it_literally(self, world: dict[str, Any]) -> None:
        inert(world["scientist"]("users", "me"), SHOWN)

    def test_add_and_update_messages_and_tables(self, world: dict[str, Any]) -> None:
        email = new_email()
        inert(world["owner"]("users", "add", "--email", email, "--password", PASSWORD, "--full-name",
                             "Eve [admin]"), "Eve [admin]", f"user {email} created")
        inert(world["owner"]("users", "update", email, "--full-name", HOSTILE), SHOWN)

    def test_an_error_echoing_user_input_prints_it_literally(self, world: dict[str, Any]) -> None:
        out = inert(world["owner"]("users", "show", "nobody[bold]@x\x1b[2J"), code=exit_codes.NOT_FOUND)
        assert "nobody[bold]@x\\x1b[2J" in out and out.startswith("error:")


class TestRolesAndGroups:
    def test_role_names_and_descriptions(self, world: dict[str, Any]) -> None:
        name = f"r{next(_seq)} [bold]x [red]"
        inert(world["owner"]("roles", "add", name, "-c", "view_statistics", "--description", HOSTILE),
              name, SHOWN)
        inert(world["owner"]("roles", "show", name), name, SHOWN)
        inert(world["owner"]("roles", "list"), name, SHOWN)

    def test_an_unknown_role_with_markup_is_one_literal_error_line(self, world: dict[str, Any]) -> None:
        result = world["owner"]("roles", "show", "Eve [admin]")
        out = inert(result, "Eve [admin]", code=exit_codes.NOT_FOUND)
        assert len(out.strip().splitlines()) == 1

    def test_group_names_descriptions_and_members(self, world: dict[str, Any]) -> None:
        group = f"g{next(_seq)} {NAME}"
        shown = group.replace(NAME, NAME_SHOWN)
        inert(world["owner"]("groups", "add", group, "--description", HOSTILE), shown, SHOWN)
        inert(world["owner"]("groups", "add-member", group, world["email"]), shown, world["email"])
        inert(world["owner"]("groups", "show", group), shown, SHOWN)
        inert(world["owner"]("groups", "list", "--search", group[:4]), shown)
        inert(world["owner"]("users", "show", world["email"]), shown)


class TestTokensAndContexts:
    def test_token_names(self, world: dict[str, Any]) -> None:
        name = f"t{next(_seq)} {NAME}"
        shown = name.replace(NAME, NAME_SHOWN)
        inert(world["owner"]("tokens", "create", name), shown)
        inert(world["owner"]("tokens", "list"), shown)
        inert(world["owner"]("tokens", "revoke", name), shown)

    def test_context_names(self, world: dict[str, Any], live_node: LiveNode) -> None:
        cli = Gridctl(home=world["home"] / f"ctx{next(_seq)}", env={"COLUMNS": WIDE})
        name = "[bold]ctx [/] \x1b[31m"
        inert(cli("login", live_node.url, "--email", world["email"], "--password", PASSWORD, "--context-name",
                  name), "[bold]ctx [/] \\x1b[31m")
        inert(cli("context", "list"), "[bold]ctx [/] \\x1b[31m")
        inert(cli("context", "show"), "[bold]ctx [/] \\x1b[31m")

    def test_audit_details(self, world: dict[str, Any]) -> None:
        inert(world["owner"]("audit", "--action", "user.created", "--limit", "500"), world["email"])


class TestTensorsAndDatasets:
    def test_upload_with_markup_in_the_name_succeeds_once(self, world: dict[str, Any]) -> None:
        name = f"a[/x] {next(_seq)}"
        result = world["owner"]("tensors", "upload", str(world["csv"]), "--name", name)
        inert(result, f"'{name}' uploaded", name)
        found = world["owner"].json("tensors", "list", "--limit", "500")
        assert [t["name"] for t in found].count(name) == 1

    @pytest.mark.parametrize("args", [["tensors", "list", "--limit", "500"], ["tensors", "search", "Eve"]])
    def test_lists_print_the_name_literally(self, world: dict[str, Any], args: list[str]) -> None:
        inert(world["owner"](*args), NAME_SHOWN)

    def test_show_prints_name_and_description_literally(self, world: dict[str, Any]) -> None:
        inert(world["owner"]("tensors", "show", str(world["tensor"]["id"])), NAME_SHOWN, SHOWN)

    def test_download_message(self, world: dict[str, Any], tmp_path: Path) -> None:
        inert(world["owner"]("tensors", "download", str(world["tensor"]["id"]), str(tmp_path / "x.safetensors")),
              NAME_SHOWN)

    def test_dataset_descriptions(self, world: dict[str, Any]) -> None:
        name = f"ds{next(_seq)}"
        inert(world["owner"]("datasets", "create", name, "--tensor", f"features={world['tensor']['id']}",
                             "--description", HOSTILE), SHOWN)
        inert(world["owner"]("datasets", "show", name), SHOWN)

    def test_permissions_name_their_subject_and_target(self, world: dict[str, Any]) -> None:
        group = f"pg{next(_seq)} [/]"
        world["owner"].json("groups", "add", group)
        inert(world["owner"]("permissions", "grant", "--group", group, "--tensor", str(world["tensor"]["id"]),
                             "--level", "compute"), group, NAME_SHOWN)
        inert(world["owner"]("permissions", "list", "--group", group), group, NAME_SHOWN)


class TestRequests:
    def test_ask_budget_with_markup_in_the_reason_then_the_officer_lists_it(self, world: dict[str, Any]) -> None:
        asked = world["scientist"]("requests", "ask", "budget", "--epsilon", "1", "--reason", "please [/] thanks")
        inert(asked, "please [/] thanks")
        pending = world["owner"]("requests", "list", "--status", "pending", "--limit", "500")
        inert(pending, "please [/] thanks")

    def test_access_request_reason_note_and_target_name(self, world: dict[str, Any]) -> None:
        asked = world["scientist"].json("requests", "ask", "access", "--tensor", str(world["tensor"]["id"]),
                                        "--level", "download", "--reason", HOSTILE)
        inert(world["owner"]("requests", "show", str(asked["id"])), SHOWN, f"tensor {NAME_SHOWN}")
        inert(world["owner"]("requests", "list", "--kind", "access", "--limit", "500"), SHOWN, NAME_SHOWN)
        inert(world["owner"]("requests", "deny", str(asked["id"]), "--reason", HOSTILE), SHOWN)
        inert(world["scientist"]("requests", "show", str(asked["id"])), SHOWN)

    def test_an_auto_denied_release_is_printed_and_exits_denied(self, world: dict[str, Any]) -> None:
        result = world["scientist"]("requests", "ask", "release", "--tensor", str(world["tensor"]["id"]),
                                    "--reason", HOSTILE)
        out = inert(result, SHOWN, "auto_denied", "denied at once", code=exit_codes.DENIED)
        assert "not differentially private" in out
        asked = world["scientist"]("requests", "list", "--kind", "release", "--output", "json")
        [release] = [r for r in json.loads(asked.stdout) if r["target_id"] == world["tensor"]["id"]]
        assert release["state"] == "auto_denied"

    def test_an_auto_denied_release_in_json_still_prints_the_request(self, world: dict[str, Any],
                                                                     live_node: LiveNode) -> None:
        csv = world["home"] / "g.csv"
        csv.write_text("a\n1\n")
        tensor = world["owner"].json("tensors", "upload", str(csv), "--name", f"private {next(_seq)}")
        result = world["scientist"]("requests", "ask", "release", "--tensor", str(tensor["id"]), "--output", "json")
        assert result.exit_code == exit_codes.DENIED
        assert json.loads(result.stdout)["state"] == "auto_denied"
        assert result.stderr.strip().splitlines()[-1].startswith("error: request")


class TestBudget:
    def test_budget_shows_the_email_literally(self, world: dict[str, Any]) -> None:
        inert(world["scientist"]("budget"), world["email"])
        inert(world["owner"]("budget", "--user", world["email"]), world["email"])


class TestNoNode:
    def test_check_prints_the_extras_brackets(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from providers import base

        monkeypatch.setattr(base, "available_providers", lambda: {})  # as on a machine without the extras
        result = Gridctl(home=tmp_path, env={"COLUMNS": WIDE})("check")
        inert(result, *(f"pip install 'gridctl[{cloud}]'" for cloud in ("aws", "gcp", "azure")),
              code=exit_codes.ERROR)

    def test_the_unexpected_error_handler_prints_the_error_literally(self, tmp_path: Path) -> None:
        (tmp_path / "contexts.yaml").write_text(
            'current: x\ncontexts:\n  x: {url: "http://127.0.0.1:9", token: t, "[/] [bold]x \\e[31mred": 1}\n')
        result = Gridctl(home=tmp_path)("users", "list")
        out = inert(result, "[/] [bold]x \\x1b[31mred", code=exit_codes.ERROR)
        assert out.startswith("error: unexpected")


class TestLayout:
    def test_long_text_wraps_at_80_columns_instead_of_being_cut(self, world: dict[str, Any]) -> None:
        long = "start-" + "-".join(f"w{i:03d}" for i in range(80)) + "-finish"
        group = f"long{next(_seq)}"
        world["owner"].json("groups", "add", group, "--description", long)
        result = world["owner"]("groups", "list", "--search", group, COLUMNS="80")
        out = inert(result, "start-", "-finish")
        assert "…" not in out
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
        flat = re.sub(r"[\s│┃|]", "", result.stdout)
        assert all(f"w{i:03d}" in flat for i in range(80))

    def test_right_to_left_text_keeps_the_table_aligned(self, world: dict[str, Any]) -> None:
        result = world["owner"]("users", "list", "--search", world["email"], COLUMNS="120")
        inert(result)
        widths = {len(line) for line in result.stdout.splitlines() if line.startswith(("┏", "┡", "└", "│"))}
        assert len(widths) == 1 and widths.pop() <= 120


class TestSafeText:
    @pytest.mark.parametrize(("raw", "shown"), [
        ("\x1b[31m", "\\x1b[31m"), ("\x9b2J", "\\x9b2J"), ("a\nb", "a\\nb"), ("\t", "\\t"), ("\x00", "\\x00"),
        ("\u202e", "\\u202e"), ("\u2066x\u2069", "\\u2066x\\u2069"), ("\u200b", "\\u200b"), ("[/]", "[/]"),
        ("שלום", "שלום"), ("ε δ ∞", "ε δ ∞"),
    ])
    def test_safe_shows_control_and_bidi_characters_as_escapes(self, raw: str, shown: str) -> None:
        assert console.safe(raw) == shown

    def test_json_text_round_trips_and_escapes_what_a_terminal_would_act_on(self) -> None:
        data = {"name": HOSTILE, "n": 4.848039837}
        text = console.json_text(data)
        assert json.loads(text) == data
        for char in RAW:
            assert char not in text
