"""Where the measuring tests and benches leave their figures for ``scripts/reliability_report.py``.

Each source has one file, ``.reliability/<source>.json`` (``GRID_RELIABILITY_DIR`` moves the folder), holding
one entry per database backend: ``{"backends": {"sqlite": {...}, "postgresql": {...}}}``. A test records its
backend's entry when it has run in full and keeps the other backend's; each entry says when it was recorded,
so a page that mixes runs shows it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RELIABILITY_DIR = Path(os.environ.get("GRID_RELIABILITY_DIR", Path(__file__).resolve().parents[1] / ".reliability"))
BACKENDS = ("sqlite", "postgresql")


def recorded_at() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def record_figures(source: str, backend: str, figures: dict[str, Any], directory: Path | None = None) -> Path:
    """Write ``figures`` as ``backend``'s entry of ``<directory>/<source>.json``, keeping the other entries."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    folder = directory or RELIABILITY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source}.json"
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        current = None
    backends = current.get("backends") if isinstance(current, dict) else None
    entries = {k: v for k, v in backends.items() if k in BACKENDS} if isinstance(backends, dict) else {}
    entries[backend] = {**figures, "recorded": recorded_at()}
    ordered = {name: entries[name] for name in BACKENDS if name in entries}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"backends": ordered}, indent=2) + "\n")
    temporary.replace(path)
    return path
