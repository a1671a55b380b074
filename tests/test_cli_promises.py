"""The CLI keeps its promises (issue 10, Measured 6) against a live Node: prompts stay off stdout, every list
is a JSON array, tables round numbers and name things, `jobs show` prints its layer table once, downloads take
a positional path, preset roles say what they are for, and a scientist sees her own ε."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from gridctl.cli import exit_codes
from tests.clitools import Gridctl, as_owner
from tests.live import LiveNode
from tests.test_release_cli import Scene

_seq = itertools.count(1)
PASSWORD = "promises password 1"


@pytest.fixture(scope="module")
def owner(live_node: LiveNode, tmp_path_factory: pytest.TempPathFactory) -> Gridctl:
    return as_owner(live_node, tmp_path_factory.mktemp("promises"))


@pytest.fixture(scope="module")
def scene(live_node: LiveNode, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """A scientist with one finished DP training job whose result an officer released (ε spent)."""
    return Scene(live_node, tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def job_id(scene: Scene) -> int:
    """The scene's one job: a finished DP training job (its result not yet released)."""
    return int(scene.result().data["job_id"])


def released(scene: Scene, job_id: int) -> None:
    """Release the job's result once (the ledger then holds one event)."""
    if not scene.scientist.budget_ledger()["items"]:
        result = scene.scientist.http.get(f"/jobs/{job_id}")["result_id"]
        scene.officer.requests.approve(scene.scientist.requests.ask_release(result=result).id)


def new_user(owner: Gridctl, **options: str) -> str:
    email = f"promise{next(_seq)}@example.com"
    args = [arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", value)]
    owner.json("users", "add", "--email", email, "--password", PASSWORD, *args)
    return email


class TestPromptsStayOffStdout:
    def test_a_declined_confirmation_in_json_mode_prints_nothing_on_stdout(self, owner: Gridctl) -> None:
        email = new_user(owner)
        result = owner("users", "remove", email, "--output", "json", input="n\n")
        assert result.exit_code == exit_codes.ERROR and result.stdout == ""
        assert "Delete user" in result.stderr

    def test_an_unanswered_confirmation_refuses_with_usage_and_prints_nothing_on_stdout(self, owner: Gridctl) -> None:
        email = new_user(owner)
        result = owner("users", "remove", email, "--output", "json")
        assert result.exit_code == exit_codes.USAGE and result.stdout == "" and "--yes" in result.stderr
        assert owner("users", "show", email).exit_code == 0

    def test_password_prompts_go_to_stderr_and_stdout_is_only_the_json(self, owner: Gridctl) -> None:
        email = f"prompted{next(_seq)}@example.com"
        result = owner("users", "add", "--email", email, "--output", "json", input=f"{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["email"] == email
        assert "Password for" in result.stderr and PASSWORD not in result.stdout + result.stderr

    def test_login_prompts_on_stderr(self, live_node: LiveNode, owner: Gridctl, tmp_path: Path) -> None:
        email = new_user(owner)
        result = Gridctl(home=tmp_path)("login", live_node.url, "--email", email, "--output", "json",
                                        input=f"{PASSWORD}\n")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["email"] == email and "Password" in result.stderr


LISTS = [["users", "list"], ["roles", "list"], ["groups", "list"], ["tokens", "list"], ["audit"],
         ["tensors", "list"], ["tensors", "search"], ["datasets", "list"], ["permissions", "list"],
         ["requests", "list"], ["requests", "policies", "list"], ["jobs", "list"], ["jobs", "list", "--all"],
         ["workers", "list"], ["context", "list"], ["check"]]


class TestOneListShape:
    @pytest.mark.parametrize("args", LISTS, ids=" ".join)
    def test_every_list_command_prints_a_json_array(self, owner: Gridctl, args: list[str]) -> None:
        result = owner(*args, "--output", "json")
        assert result.exit_code in (0, 1) if args == ["check"] else result.exit_code == 0, result.stderr
        assert isinstance(json.loads(result.stdout), list)

    def test_jobs_list_is_the_array_of_jobs(self, scene: Scene, job_id: int) -> None:
        jobs = scene.cli_scientist.json("jobs", "list")
        assert [job["id"] for job in jobs] == [job_id]


class TestTablesForPeople:
    def test_numbers_are_rounded_in_tables_and_exact_in_json(self, owner: Gridctl) -> None:
        email = new_user(owner, budget="4.848039837")
        table = owner("users", "show", email)
        assert "4.848" in table.stdout and "4.848039837" not in table.stdout
        assert owner.json("users", "show", email)["budget_epsilon"] == 4.848039837

    def test_requests_list_names_the_dataset(self, live_node: LiveNode, owner: Gridctl, tmp_path: Path) -> None:
        csv = tmp_path / "d.csv"
        csv.write_text("x,y\n1,0\n2,1\n")
        name = f"cohort{next(_seq)}"
        owner.json("datasets", "create", name, "--from-csv", str(csv), "--label", "y")
        email = new_user(owner)
        scientist = Gridctl(home=tmp_path / "s", url=live_node.url, token=live_node.login(email, PASSWORD))
        asked = scientist.json("requests", "ask", "access", "--dataset", name, "--level", "compute",
                               "--reason", "a study")
        listed = owner("requests", "list", "--requester", email)
        assert f"dataset {name}" in listed.stdout and f"dataset {asked['target_id']}" not in listed.stdout
        assert f"dataset {name}" in owner("requests", "show", str(asked["id"])).stdout

    def test_jobs_show_prints_the_layer_table_once(self, scene: Scene, job_id: int) -> None:
        shown = scene.cli_scientist("jobs", "show", str(job_id))
        assert shown.exit_code == 0, shown.stderr
        assert shown.stdout.count("Linear") == 1 and shown.stdout.count("Model") == 1
        assert "layers" not in shown.stdout

    def test_preset_roles_are_described(self, owner: Gridctl) -> None:
        roles = {r["name"]: r for r in owner.json("roles", "list")}
        for preset in ("Owner", "Administrator", "Compliance Officer", "Data Scientist"):
            assert roles[preset]["preset"] and len(roles[preset]["description"]) > 20
        assert "Decides requests" in owner("roles", "show", "Compliance Officer").stdout


class TestDownloadPath:
    @pytest.fixture
    def tensor(self, owner: Gridctl, tmp_path: Path) -> dict[str, Any]:
        csv = tmp_path / "t.csv"
        csv.write_text("a,b\n1,2\n")
        return dict(owner.json("tensors", "upload", str(csv), "--name", f"dl{next(_seq)}"))

    def test_a_positional_path_and_o_both_work(self, owner: Gridctl, tensor: dict[str, Any], tmp_path: Path) -> None:
        positional = owner.json("tensors", "download", str(tensor["id"]), str(tmp_path / "a.safetensors"))
        flag = owner.json("tensors", "download", str(tensor["id"]), "-O", str(tmp_path / "b.safetensors"))
        assert Path(positional["path"]).read_bytes() == Path(flag["path"]).read_bytes()

    def test_a_folder_gets_the_tensor_s_name(self, owner: Gridctl, tensor: dict[str, Any], tmp_path: Path) -> None:
        saved = owner.json("tensors", "download", str(tensor["id"]), str(tmp_path))
        assert saved["path"] == str(tmp_path / f"{tensor['name']}.safetensors")

    def test_both_forms_at_once_is_a_usage_error(self, owner: Gridctl, tensor: dict[str, Any], tmp_path: Path) -> None:
        result = owner("tensors", "download", str(tensor["id"]), str(tmp_path / "a"), "-O", str(tmp_path / "b"))
        assert result.exit_code == exit_codes.USAGE and not (tmp_path / "a").exists()


class TestBudget:
    def test_the_sdk_gives_the_same_figures_to_her_and_to_an_officer(self, scene: Scene, job_id: int) -> None:
        released(scene, job_id)
        assert scene.scientist.budget() == scene.owner.budget(scene.scientist_email)

    def test_a_scientist_sees_her_spent_remaining_and_cap(self, scene: Scene, job_id: int) -> None:
        released(scene, job_id)
        found = scene.cli_scientist.json("budget")
        assert found["email"] == scene.scientist_email and found["budget_epsilon"] == 10.0
        assert found["spent_epsilon"] > 0 and found["simple_sum_epsilon"] > 0
        assert 0 < found["remaining_epsilon"] < 10.0
        assert len(found["ledger"]) == 1 and found["ledger"][0]["epsilon"] > 0
        assert found["ledger"] == scene.scientist.budget_ledger()["items"]
        table = scene.cli_scientist("budget")
        assert table.exit_code == 0, table.stderr
        for label in ("cap ε", "spent ε (Rényi filter, enforced)", "spent ε (simple sum", "remaining ε",
                      "DP-SGD, 100 steps"):
            assert label in table.stdout

    def test_officers_pass_user_and_others_may_not(self, scene: Scene) -> None:
        assert scene.cli_officer.json("budget", "--user", scene.scientist_email)["email"] == scene.scientist_email
        refused = scene.cli_scientist("budget", "--user", scene.officer.users.me()["email"])
        assert refused.exit_code == exit_codes.FORBIDDEN
