"""The README as an executable walk-through, shared by tests/test_readme.py and CI's smoke (scripts/smoke.py).

It reads README.md's fenced blocks and runs them as written against a live Node with Workers: the Python
blocks as scripts (the synthetic cohort, then Ada's notebook in a process of its own, since it waits for the
officer), the shell lines through the installed ``gridctl`` console script, and the officer's lines while the
notebook waits. The only changes to the README's text: the Node's URL (the README's is the default
``http://127.0.0.1:8470``), Ada's password (``"..."``), and the request ids and fingerprint (``1``, ``2``,
``<fingerprint>``), which the officer reads from the Node as a person would.

No pytest here: CI's smoke runs this in a virtualenv that has only ``pip install -e .``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_URL = "http://127.0.0.1:8470"
ADA = "ada@example.com"
ADA_PASSWORD = "ada's walk-through pw"
# The ids the README's officer lines use: on a fresh Node, Ada's access request is 1 and her release request 2.
README_ACCESS_ID, README_RELEASE_ID = "1", "2"


class WalkthroughError(AssertionError):
    """A step of the README failed; the message says which, with the command's output."""


def sections(text: str | None = None) -> dict[str, str]:
    """The README's ``## `` sections by title."""
    text = README.read_text() if text is None else text
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def fenced(body: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` in ``body``, in order."""
    return [m.group(1) for m in re.finditer(rf"^```{language}\n(.*?)^```$", body, flags=re.MULTILINE | re.DOTALL)]


def command_lines(block: str) -> list[str]:
    """A shell block's commands: one a line, without the trailing ``# comment``."""
    lines = []
    for raw in block.splitlines():
        line = re.sub(r"\s+#\s.*$", "", raw).strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def ci_commands() -> list[str]:
    """The README's two commands that CI runs verbatim: the quick start's and the test command."""
    quick = sections()["Quick start"]
    return [line for block in fenced(quick, "bash") for line in command_lines(block)]


@dataclass
class Walkthrough:
    """What the README's "Data, training and releases" section and its "Administering" ``users add`` run."""

    admin: list[str]
    cohort: str
    owner: list[str]
    notebook: str
    officer: list[str]

    @classmethod
    def from_readme(cls, text: str | None = None) -> Walkthrough:
        parts = sections(text)
        admin = command_lines(fenced(parts["Administering a Node"], "bash")[0])
        data = parts["Data, training and releases"]
        python, bash = fenced(data, "python"), fenced(data, "bash")
        if len(python) != 2 or len(bash) != 2:
            raise WalkthroughError("the walk-through has 2 Python blocks (cohort, notebook) and 2 shell blocks "
                                   f"(owner, officer); found {len(python)} and {len(bash)}")
        return cls(admin=[line for line in admin if line.startswith("gridctl users add ")],
                   cohort=python[0], owner=command_lines(bash[0]), notebook=python[1],
                   officer=command_lines(bash[1]))


@dataclass
class Gridctl:
    """The installed console script with its environment (GRIDCTL_HOME, and the Owner's URL and token)."""

    env: dict[str, str]
    cwd: Path
    log: list[str] = field(default_factory=list)

    def __call__(self, line: str, *, input: str | None = None, timeout: float = 300) -> str:
        argv = shlex.split(line)
        if argv[0] != "gridctl":
            raise WalkthroughError(f"not a gridctl command: {line}")
        executable = shutil.which("gridctl", path=str(Path(sys.executable).parent)) or shutil.which("gridctl")
        if not executable:
            raise WalkthroughError("the gridctl console script is not installed")
        result = subprocess.run([executable, *argv[1:]], input=input, capture_output=True, text=True,
                                cwd=self.cwd, env=self.env, timeout=timeout)
        self.log.append(f"$ {line}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise WalkthroughError(f"`{line}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def json(self, line: str) -> Any:
        return json.loads(self(f"{line} --output json"))


def _substitute(line: str, ids: dict[str, str]) -> str:
    argv = shlex.split(line)
    out = [ids.get(arg, arg) for arg in argv]
    return shlex.join(out)


def _pending(gridctl: Gridctl, kind: str, requester: str, timeout: float,
             notebook: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for the notebook's pending request of ``kind``, as the officer's ``requests list`` shows it."""
    deadline = time.monotonic() + timeout
    while True:
        page = gridctl.json("gridctl requests list --status pending")
        items = page["items"] if isinstance(page, dict) else page
        mine = [r for r in items if r.get("kind") == kind and _requester(r) == requester]
        if mine:
            return dict(mine[0])
        if notebook.poll() is not None:
            out, err = notebook.communicate()
            raise WalkthroughError(f"the notebook ended (exit {notebook.returncode}) before its {kind} request:\n"
                                   f"{out}\n{err}")
        if time.monotonic() > deadline:
            raise WalkthroughError(f"no pending {kind} request from {requester} within {timeout:.0f} s")
        time.sleep(1.0)


def _requester(request: dict[str, Any]) -> str | None:
    who = request.get("requester")
    if isinstance(who, dict):
        return who.get("email")
    return request.get("requester_email") or who


NOTEBOOK_EPILOGUE = """
import json as _json
print("WALKTHROUGH=" + _json.dumps({
    "hits": len(hits), "job_status": job.status, "epsilon": result.epsilon, "delta": result.delta,
    "weights": sorted(weights), "budget": node.http.get("/budget"),
}))
"""


def run(url: str, gridctl: Gridctl, workdir: Path, *, timeout: float = 900,
        say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the README's walk-through against the Node at ``url``; ``gridctl`` acts as the Owner (who is also
    the officer). Returns what Ada's notebook ended with; raises ``WalkthroughError`` on any failure."""
    walk = Walkthrough.from_readme()

    say("the cohort (README's first Python block)")
    subprocess.run([sys.executable, "-c", walk.cohort], cwd=workdir, check=True, timeout=120)

    say("the Owner adds Ada, hosts the dataset and sets her budget")
    for line in walk.admin:
        gridctl(line, input=f"{ADA_PASSWORD}\n{ADA_PASSWORD}\n")
    for line in walk.owner:
        gridctl(line)

    say("Ada's notebook runs, and waits for the officer")
    if walk.notebook.count(README_URL) != 1 or walk.notebook.count('password="..."') != 1:
        raise WalkthroughError(f"the notebook should connect to {README_URL} with password=\"...\"")
    notebook_code = (walk.notebook.replace(README_URL, url).replace('password="..."', f"password={ADA_PASSWORD!r}")
                     + NOTEBOOK_EPILOGUE)
    notebook = subprocess.Popen([sys.executable, "-c", notebook_code], cwd=workdir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        officer = walk.officer
        if len(officer) != 4:
            raise WalkthroughError(f"the officer's block has 4 commands; found {officer}")
        listing, approve_access, show_release, approve_release = officer

        say("the officer approves her access request")
        access = _pending(gridctl, "access", ADA, timeout, notebook)
        gridctl(listing)
        gridctl(_substitute(approve_access, {README_ACCESS_ID: str(access["id"])}))

        say("her job trains; the officer reads the cost card and approves the release")
        release = _pending(gridctl, "release", ADA, timeout, notebook)
        ids = {README_RELEASE_ID: str(release["id"])}
        gridctl(_substitute(show_release, ids))
        card = gridctl.json(_substitute(show_release, ids))
        payload, cost_card = card.get("payload") or {}, card.get("card") or {}
        fingerprint = payload.get("fingerprint") or cost_card.get("fingerprint")
        if not fingerprint:
            raise WalkthroughError(f"`requests show` gave no fingerprint: {card}")
        gridctl(_substitute(approve_release, {**ids, "<fingerprint>": fingerprint}))

        out, err = notebook.communicate(timeout=timeout)
    finally:
        if notebook.poll() is None:
            notebook.kill()
            notebook.communicate()
    if notebook.returncode != 0:
        raise WalkthroughError(f"the notebook failed (exit {notebook.returncode}):\n{out}\n{err}")
    found = next((line for line in out.splitlines() if line.startswith("WALKTHROUGH=")), None)
    if found is None:
        raise WalkthroughError(f"the notebook printed no summary:\n{out}\n{err}")
    summary: dict[str, Any] = json.loads(found.removeprefix("WALKTHROUGH="))
    summary["release"] = {"id": release["id"], "fingerprint": fingerprint}
    return summary
