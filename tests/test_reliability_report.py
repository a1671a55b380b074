"""scripts/reliability_report.py writes docs/reliability.md from the figures in .reliability/, and only those."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "reliability_report.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reliability_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(directory: Path) -> None:
    directory.mkdir()
    (directory / "fuzz.json").write_text(json.dumps({
        "cases": 5432, "server_errors": 0, "nonconforming": 0, "operations": 83,
        "principals": {"officer": {"cases": 2716, "server_errors": 0, "statuses": {"200": 10}},
                       "scientist": {"cases": 2716, "server_errors": 0, "statuses": {"403": 12}}}}))
    (directory / "kills.json").write_text(json.dumps({"kills": 8, "survived": 8, "orphans": 0}))


class TestReport:
    def test_writes_each_sources_figures_and_says_what_did_not_run(self, tmp_path: Path) -> None:
        figures, page = tmp_path / "figures", tmp_path / "reliability.md"
        _figures(figures)
        assert _script().main(["--dir", str(figures), "--output", str(page)]) == 0
        text = page.read_text()
        assert "5,432 generated requests on 83 operations as officer, scientist: 0 server errors" in text
        assert "8 of 8 SIGKILLs survived with 0 orphans" in text
        assert "| principals: officer: cases | 2,716 |" in text
        sections = text.split("## ")
        assert "Not run in the last run." in next(s for s in sections if s.startswith("Authorization matrix"))
        assert "Not run in the last run." in next(s for s in sections if s.startswith("Load"))

    def test_check_fails_when_the_page_does_not_match_the_figures(self, tmp_path: Path) -> None:
        figures, page = tmp_path / "figures", tmp_path / "reliability.md"
        _figures(figures)
        run = [sys.executable, str(SCRIPT), "--dir", str(figures), "--output", str(page)]
        assert subprocess.run([*run, "--check"], check=False, capture_output=True).returncode == 1
        assert subprocess.run(run, check=False, capture_output=True).returncode == 0
        assert subprocess.run([*run, "--check"], check=False, capture_output=True).returncode == 0
        (figures / "kills.json").write_text(json.dumps({"kills": 9, "survived": 8, "orphans": 2}))
        result = subprocess.run([*run, "--check"], check=False, capture_output=True, text=True)
        assert result.returncode == 1 and "does not match" in result.stderr

    def test_an_unreadable_figure_file_counts_as_not_run(self, tmp_path: Path) -> None:
        figures = tmp_path / "figures"
        figures.mkdir()
        (figures / "fuzz.json").write_text("{not json")
        page = _script().render(_script().load_figures(figures))
        assert page.count("Not run in the last run.") == 4
