#!/usr/bin/env python3
"""Write docs/reliability.md from the figures the last test run left in ``.reliability/``.

Each measuring test writes one JSON file there (``GRID_RELIABILITY_DIR`` moves it):

- ``route_security.json``: the authorization matrix (tests/test_route_security.py): routes x principals checked;
- ``fuzz.json``: schemathesis against the OpenAPI document (tests/test_fuzz_api.py): cases, 5xx, conformance;
- ``kills.json``: SIGKILL during upload, approval and job (tests/test_kill_recovery.py): kills survived, orphans;
- ``load.json``: the load test (``bench/load.py --json``): throughput against ``/health``, p99, targets held.

A file either holds one set of figures, or one per database backend under ``"backends"`` (``sqlite``,
``postgresql``; tests/reliability.py writes them): the page then shows one column per backend, and a backend
that did not run is said not to have run.

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
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
MIN_FUZZ_CASES = 5_000  # issue 11: 0 5xx in at least this many cases
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


def _backend_table(backends: dict[str, dict[str, Any]]) -> list[str]:
    """One row per figure, one column per backend that ran ("-" where a backend lacks the figure)."""
    flat = {name: dict(_flat(data)) for name, data in backends.items()}
    labels: list[str] = []
    for rows in flat.values():
        labels += [label for label in rows if label not in labels]
    lines = ["| figure | " + " | ".join(BACKENDS[name] for name in flat) + " |",
             "|---|" + "---|" * len(flat)]
    for label in labels:
        cells = [_value(rows[label]) if label in rows else "-" for rows in flat.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _mark(held: Any) -> str:
    return "held" if held is True else "missed" if held is False else "not measured"


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
    if name == "load":
        mix, health, probe = data.get("mix", {}), data.get("health_alone", {}), data.get("health_during_mix", {})
        targets = data.get("targets", {})
        verdict = "all targets held" if data.get("held") is True else "a target was missed"
        return (f"{_value(data.get('clients', 0))} clients: the mix {_value(mix.get('per_second', 0.0))} req/s, "
                f"`/health` alone {_value(health.get('per_second', 0.0))} req/s: ratio "
                f"{_value(data.get('ratio', 0.0))} (>= 0.6: {_mark(targets.get('ratio'))}); mix p99 "
                f"{_value(mix.get('p99_ms', 0.0))} ms (<= 500 ms: {_mark(targets.get('mix_p99'))}); `/health` "
                f"during the mix at most {_value(probe.get('max_ms', 0.0))} ms (<= 50 ms throughout: "
                f"{_mark(targets.get('health_during_mix'))}); {_value(data.get('errors', 0))} errors "
                f"({_mark(targets.get('no_errors'))}): {verdict}.")
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
        backends = data.get("backends")
        if not isinstance(backends, dict):
            lines += [_headline(name, data), ""]
            lines += _table(_flat(data))
            lines.append("")
            continue
        ran = {key: value for key, value in backends.items() if key in BACKENDS and isinstance(value, dict)}
        for key, label in BACKENDS.items():
            lines.append(f"- {label}: " + (_headline(name, ran[key]) if key in ran else "not run in the last run."))
        if name == "fuzz":
            enough = [BACKENDS[k] for k, v in ran.items() if v.get("cases", 0) >= MIN_FUZZ_CASES]
            lines.append(f"- At least {MIN_FUZZ_CASES:,} cases: {', '.join(enough) or 'no backend'}.")
        lines += [f"- {label}: {_value(value)}" for label, value in _flat(
            {k: v for k, v in data.items() if k != "backends"})]
        lines.append("")
        if ran:
            lines += _backend_table(ran)
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
