"""Driving the gridctl CLI in tests: in process with Typer's CliRunner, or as the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from gridctl.cli.app import app
from tests.live import LiveNode

# Variables a developer's shell might set that would leak into the tests; each run sets its own.
_GRIDCTL_ENV = ("GRIDCTL_URL", "GRIDCTL_TOKEN", "GRIDCTL_CONTEXT", "GRIDCTL_OUTPUT", "GRIDCTL_EMAIL",
                "GRIDCTL_PASSWORD", "GRIDCTL_DEBUG")


@dataclass
class Gridctl:
    """``gridctl`` with its own GRIDCTL_HOME; ``url``/``token`` become GRIDCTL_URL/GRIDCTL_TOKEN when set."""

    home: Path
    url: str | None = None
    token: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, **overrides: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {name: None for name in _GRIDCTL_ENV}
        env.update(GRIDCTL_HOME=str(self.home), GRIDCTL_URL=self.url, GRIDCTL_TOKEN=self.token, COLUMNS="200")
        env.update(self.env)
        env.update(overrides)
        return env

    def __call__(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner().invoke(app, list(args), input=input, env=self.environment(**env))

    def json(self, *args: str, **env: str | None) -> Any:
        """Run with ``--output json``; the command must succeed; its stdout parsed."""
        result = self(*args, "--output", "json", **env)
        assert result.exit_code == 0, f"gridctl {' '.join(args)} -> {result.exit_code}: {result.stderr}"
        return json.loads(result.stdout)

    def subprocess(self, *args: str, input: str | None = None, **env: str | None) -> subprocess.CompletedProcess[str]:
        """The real console script, as a user's shell runs it."""
        beside = Path(sys.executable).parent / "gridctl"  # the venv's own script, when its bin is not on PATH
        executable = str(beside) if beside.exists() else shutil.which("gridctl")
        assert executable, "the gridctl console script is not installed (pip install -e .)"
        full_env = {k: v for k, v in os.environ.items() if k not in _GRIDCTL_ENV}
        full_env.update({k: v for k, v in self.environment(**env).items() if v is not None})
        return subprocess.run([executable, *args], input=input, env=full_env, capture_output=True, text=True,
                              timeout=60)


def as_owner(live_node: LiveNode, home: Path) -> Gridctl:
    return Gridctl(home=home, url=live_node.url, token=live_node.owner_token)
