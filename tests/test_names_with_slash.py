"""Names in URL paths (grid_runtime/node/routing.py, gridctl/sdk/http.py's ``segment``): any stored name can be
looked up by name, one with ``/``, ``%``, spaces or non-ASCII letters included, through a real uvicorn Node, by the
SDK, the CLI and plain HTTP.

Role and group names are free text (``Name``), an email may hold ``/`` and ``%``, token names are free text:
each goes into a path as one percent-encoded segment (``ops/eu`` -> ``ops%2Feu``), which the server used to decode
into two segments before routing, so the lookup answered 404 for a name that exists.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

import gridctl
from gridctl.cli.exit_codes import NOT_FOUND
from gridctl.sdk import errors
from gridctl.sdk.http import segment
from gridctl.sdk.node import Node
from tests.clitools import Gridctl
from tests.live import LiveNode

_seq = itertools.count(1)
PASSWORD = "a long enough password"
#: Each is stored as it is and must be found by that exact text.
NAMES = ["ops/eu", "a/b/c", "/leading", "trailing/", "50% off", "a%2Fb", "%", "100%25", "data team", "x/../y",
         "Équipe données ✓", "研究/数据", "..", ".", "a?b#c", "a+b&c=d", "tab\tin", "@home"]


def _unique(name: str) -> str:
    """``name`` with a counter that keeps its characters (tests share the session's Node)."""
    return f"{name} {next(_seq)}" if not name.endswith("/") else f"{next(_seq)} {name}"


@pytest.fixture
def owner(live_node: LiveNode) -> Iterator[Node]:
    node = gridctl.connect(live_node.url, token=live_node.owner_token)
    yield node
    node.close()


@pytest.fixture
def cli(live_node: LiveNode, tmp_path: Path) -> Gridctl:
    return Gridctl(home=tmp_path / "home", url=live_node.url, token=live_node.owner_token)


def test_segment_encodes_every_character_a_path_gives_a_meaning_to() -> None:
    assert segment("ops/eu") == "ops%2Feu"
    assert segment("50% off") == "50%25%20off"
    assert segment("a%2Fb") == "a%252Fb"
    assert segment("a?b#c") == "a%3Fb%23c"
    assert segment("Équipe") == "%C3%89quipe"
    assert segment("..") == "%2E%2E" and segment(".") == "%2E" and segment("...") == "..."
    assert segment("owner@example.com") == "owner@example.com" and segment(42) == "42"


@pytest.mark.parametrize("base", NAMES)
def test_a_role_is_found_updated_and_removed_by_its_name(owner: Node, base: str) -> None:
    name = base if base in {"..", "."} else _unique(base)  # the dot-segments exactly as they are
    created = owner.roles.create(name, ["upload_data"], description="before")
    assert created["name"] == name
    found = owner.roles.get(name)
    assert (found["id"], found["name"]) == (created["id"], name)
    assert owner.roles.update(name, description="after")["description"] == "after"
    assert owner.roles.get(created["id"])["description"] == "after"
    owner.roles.remove(name)
    with pytest.raises(errors.NotFound):
        owner.roles.get(name)


def test_a_name_that_is_a_prefix_of_another_is_not_confused_with_it(owner: Node) -> None:
    """``ops`` and ``ops/eu`` are two roles: each lookup finds its own, and a name not stored is a typed 404."""
    short = _unique("ops")
    long = f"{short}/eu"
    first = owner.roles.create(short, ["upload_data"])
    second = owner.roles.create(long, ["manage_groups"])
    assert owner.roles.get(short)["id"] == first["id"]
    assert owner.roles.get(long)["id"] == second["id"]
    with pytest.raises(errors.NotFound) as caught:
        owner.roles.get(f"{short}/nowhere")
    assert caught.value.status == 404 and caught.value.code == "not_found"


def test_groups_and_their_members_by_name_and_email(owner: Node) -> None:
    group = _unique("research/eu 研究")
    email = f"r{next(_seq)}/50%x@example.com"
    user = owner.users.create(email, PASSWORD)
    assert user["email"] == email
    created = owner.groups.create(group)
    assert owner.groups.get(group)["id"] == created["id"]
    owner.groups.add_member(group, email)
    assert [m["email"] for m in owner.groups.get(group)["members"]] == [email]
    owner.groups.remove_member(group, email)
    assert owner.groups.get(group)["members"] == []
    assert owner.groups.update(group, description="renamed")["description"] == "renamed"
    owner.groups.remove(group)
    with pytest.raises(errors.NotFound):
        owner.groups.get(group)


def test_a_user_with_slash_and_percent_in_the_email_is_found_everywhere(owner: Node, live_node: LiveNode) -> None:
    email = f"ops/{next(_seq)}%team@example.com"
    user = owner.users.create(email, PASSWORD)
    assert owner.users.get(email)["id"] == user["id"]
    assert owner.users.update(email, full_name="Ops Team")["full_name"] == "Ops Team"
    assert owner.users.set_budget(email, 2.5)["budget_epsilon"] == 2.5
    assert owner.budget(email)["budget_epsilon"] == 2.5
    assert owner.budget_ledger(email)["items"] == []
    assert owner.jobs.quota(email)["user_id"] == user["id"]
    # the user's own named token, revoked by its name; then every token of theirs, by their email
    with gridctl.connect(live_node.url, email=email, password=PASSWORD) as them:
        token = f"ci/deploy 50% {next(_seq)}"
        made = them.tokens.create(token)
        assert [t["name"] for t in owner.tokens.list(user=email) if t["id"] == made["id"]] == [token]
        assert them.tokens.revoke(token)["id"] == made["id"]
    owner.tokens.revoke_all(email)
    owner.users.remove(email)
    with pytest.raises(errors.NotFound):
        owner.users.get(email)


def test_the_cli_shows_and_removes_by_such_names(owner: Node, cli: Gridctl) -> None:
    role = _unique("ops/eu 50% Équipe")
    group = _unique("team/a b")
    owner.roles.create(role, ["upload_data"])
    owner.groups.create(group)
    assert cli.json("roles", "show", role)["name"] == role
    assert cli.json("groups", "show", group)["name"] == group
    email = f"cli/{next(_seq)}@example.com"
    owner.users.create(email, PASSWORD)
    assert cli.json("users", "show", email)["email"] == email
    removed = cli("roles", "remove", role, "--yes")
    assert removed.exit_code == 0, removed.stderr
    missing = cli("roles", "show", role)
    assert missing.exit_code == NOT_FOUND and f"no role {role!r}" in missing.stderr


def test_plain_http_the_escaped_slash_is_one_segment_and_a_bare_slash_is_not(live_node: LiveNode) -> None:
    name = _unique("plain/http")
    headers = {"Authorization": f"Bearer {live_node.owner_token}"}
    with httpx.Client(base_url=live_node.api, headers=headers, timeout=30) as client:
        created = client.post("/roles", json={"name": name, "capabilities": []})
        assert created.status_code == 201, created.text
        found = client.get(f"/roles/{quote(name, safe='')}")
        assert found.status_code == 200 and found.json()["id"] == created.json()["id"]
        # unescaped, the slash separates segments: no such route, a typed 404 (not the role, not a 5xx)
        bare = client.get(f"/roles/{name.replace(' ', '%20')}")
        assert bare.status_code == 404 and bare.json()["code"] == "not_found"
        # digits with an escaped slash are a name, not an id: looked up and not found
        odd = client.get("/roles/1%2F2")
        assert odd.status_code == 404 and odd.json()["code"] == "not_found"
        assert "1/2" in odd.json()["message"]
        # an id route with an escaped slash matches no route; nothing answers 5xx
        for path in ("/tensors/1%2F2", "/users/%2F", "/groups/%25/members/%2F", "/datasets/a%2Fb/bounds"):
            answer = client.get(path)
            assert answer.status_code < 500, (path, answer.status_code, answer.text)
