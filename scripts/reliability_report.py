#!/usr/bin/env python3
"""Write docs/reliability.md from the figures the last test run left in ``.reliability/``.

Each measuring test writes one JSON file there (``GRID_RELIABILITY_DIR`` moves it):

- ``route_security.json``: the authorization matrix (tests/test_route_security.py): routes x principals checked;
- ``fuzz.json``: schemathesis against the OpenAPI document (tests/test_fuzz_api.py): cases, 5xx, conformance;
- ``kills.json``: SIGKILL during upload, approval and job (tests/test_kill_recovery.py): kills survived, orphans;
- ``load.json``: the load test (bench/load.py): throughput against ``/health``, p99.

Usage: ``python scripts/reliability_report.py`` writes the page; ``--check`` exits 1 if the page does not match
the figures (CI runs the first after the tests, so the page always tells the last run). A source that did not
run is shown as "not run", never filled in.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / ".reliability"
DEFAULT_PAGE = ROOT / "docs" / "reliability.md"
SOURCES = {
    "route_security": ("Authorization matrix", "tests/test_route_security.py"),
    "fuzz": ("Fuzzing the API", "tests/test_fuzz_api.py"),
    "kills": ("Kills and recovery", "tests/test_kill_recovery.py"),
    "load": ("Load", "bench/load.py"),
}


def load_figures(directory: Path) -> dict[str, dict[str, Any] | None]:
    figures: dict[str, dict[str, Any] | None] = {}
    for name in SOURCES:
        path = directory / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        figures[name] = data if isinstance(data, dict) else None
    return figures


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {_value(value)} |" for name, value in rows]
    return lines


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        label = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            for sub, inner in value.items():
                rows += _flat(inner, f"{label}: {sub}: ")
        else:
            rows.append((label, value))
    return rows


def _headline(name: str, data: dict[str, Any]) -> str:
    """One sentence per source, from its main figures (whatever else it wrote follows in the table)."""
    if name == "fuzz":
        return (f"{_value(data.get('cases', 0))} generated requests on {_value(data.get('operations', 0))} "
                f"operations as {', '.join(data.get('principals', {})) or 'no one'}: "
                f"{_value(data.get('server_errors', 0))} server errors, "
                f"{_value(data.get('nonconforming', 0))} responses outside the documented schema.")
    if name == "kills":
        return (f"{_value(data.get('survived', 0))} of {_value(data.get('kills', 0))} SIGKILLs survived with "
                f"{_value(data.get('orphans', 0))} orphans after restart (no blob without its row, no row without "
                "its blob, no staging or temporary file, database checks clean).")
    if name == "route_security":
        routes, principals = data.get("routes"), data.get("principals")
        count = len(principals) if isinstance(principals, list) else principals
        return f"{_value(routes)} routes x {_value(count)} principals checked." if routes is not None \
            else "See the table."
    return "See the table."


def render(figures: dict[str, dict[str, Any] | None]) -> str:
    lines = [
        "# Reliability",
        "",
        "Written by `scripts/reliability_report.py` from the figures the last test run left in `.reliability/`;",
        "CI (`.ci/run`) regenerates it after the tests, so it always tells the last run. Do not edit by hand.",
        "",
    ]
    for name, (title, source) in SOURCES.items():
        lines += [f"## {title}", "", f"Measured by `{source}`.", ""]
        data = figures.get(name)
        if data is None:
            lines += ["Not run in the last run.", ""]
            continue
        lines += [_headline(name, data), ""]
        lines += _table(_flat(data))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("GRID_RELIABILITY_DIR", DEFAULT_DIR)),
                        help="where the tests wrote their figures (default: .reliability)")
    parser.add_argument("--output", type=Path, default=DEFAULT_PAGE, help="the page to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if the page does not match the figures")
    args = parser.parse_args(argv)
    page = render(load_figures(args.dir))
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != page:
            print(f"{args.output} does not match the figures in {args.dir}; run scripts/reliability_report.py",
                  file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
