"""The reliability figures per database backend: tests/reliability.py records them, scripts/reliability_report.py
shows one column per backend and says which did not run, and bench/load.py's figures reach the page."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.reliability import record_figures

ROOT = Path(__file__).resolve().parents[1]


def _module(relative: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _fuzz(cases: int, server_errors: int = 0) -> dict[str, object]:
    return {"cases": cases, "server_errors": server_errors, "nonconforming": 0, "operations": 86,
            "principals": {"officer": {"cases": cases // 2}, "scientist": {"cases": cases - cases // 2}}}


def _load(ratio: float, p99: float, probe_max: float) -> dict[str, object]:
    targets = {"ratio": ratio >= 0.6, "mix_p99": p99 <= 500, "health_during_mix": probe_max <= 50,
               "no_errors": True}
    return {"clients": 50, "health_alone": {"per_second": 600.0, "p99_ms": 200.0},
            "mix": {"per_second": 600.0 * ratio, "p99_ms": p99}, "ratio": ratio,
            "health_during_mix": {"max_ms": probe_max}, "errors": 0, "targets": targets,
            "held": all(targets.values())}


class TestRecordFigures:
    def test_each_backend_keeps_its_own_entry(self, tmp_path: Path) -> None:
        record_figures("fuzz", "postgresql", _fuzz(3000), tmp_path)
        record_figures("fuzz", "sqlite", _fuzz(5000), tmp_path)
        record_figures("fuzz", "sqlite", _fuzz(5800), tmp_path)  # a later run replaces its backend's entry only
        backends = json.loads((tmp_path / "fuzz.json").read_text())["backends"]
        assert list(backends) == ["sqlite", "postgresql"]
        assert backends["sqlite"]["cases"] == 5800 and backends["postgresql"]["cases"] == 3000
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", backends["sqlite"]["recorded"])

    def test_a_file_of_the_old_single_format_is_replaced(self, tmp_path: Path) -> None:
        (tmp_path / "kills.json").write_text(json.dumps({"kills": 7, "survived": 7, "orphans": 0}))
        record_figures("kills", "postgresql", {"kills": 8, "survived": 8, "orphans": 0}, tmp_path)
        assert list(json.loads((tmp_path / "kills.json").read_text())) == ["backends"]

    def test_an_unknown_backend_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="unknown backend"):
            record_figures("fuzz", "mysql", _fuzz(1), tmp_path)


class TestReportPerBackend:
    def test_one_column_per_backend_and_a_missing_backend_is_said_not_to_have_run(self, tmp_path: Path) -> None:
        record_figures("fuzz", "sqlite", _fuzz(5782), tmp_path)
        record_figures("fuzz", "postgresql", _fuzz(2400, server_errors=1), tmp_path)
        record_figures("kills", "sqlite", {"kills": 7, "survived": 7, "orphans": 0}, tmp_path)
        report = _module("scripts/reliability_report.py", "reliability_report")
        page = report.render(report.load_figures(tmp_path))
        fuzz = next(s for s in page.split("## ") if s.startswith("Fuzzing the API"))
        assert "- SQLite: 5,782 generated requests on 86 operations as officer, scientist: 0 server errors" in fuzz
        assert "- PostgreSQL: 2,400 generated requests on 86 operations as officer, scientist: 1 server errors" \
            in fuzz
        assert "- At least 5,000 cases: SQLite." in fuzz
        assert "| figure | SQLite | PostgreSQL |" in fuzz
        assert "| cases | 5,782 | 2,400 |" in fuzz
        kills = next(s for s in page.split("## ") if s.startswith("Kills and recovery"))
        assert "- SQLite: 7 of 7 SIGKILLs survived with 0 orphans" in kills
        assert "- PostgreSQL: not run in the last run." in kills
        assert "| figure | SQLite |\n" in kills

    def test_the_load_section_says_which_targets_held_on_each_backend(self, tmp_path: Path) -> None:
        (tmp_path / "load.json").write_text(json.dumps({
            "backends": {"sqlite": _load(0.15, 3220.0, 451.0), "postgresql": _load(0.7, 400.0, 30.0)},
            "machine": "x86_64, 2 CPUs"}))
        report = _module("scripts/reliability_report.py", "reliability_report")
        page = report.render(report.load_figures(tmp_path))
        load = next(s for s in page.split("## ") if s.startswith("Load"))
        sqlite = next(line for line in load.splitlines() if line.startswith("- SQLite:"))
        postgresql = next(line for line in load.splitlines() if line.startswith("- PostgreSQL:"))
        assert "ratio 0.15 (>= 0.6: missed)" in sqlite and "mix p99 3,220 ms (<= 500 ms: missed)" in sqlite
        assert "at most 451 ms (<= 50 ms throughout: missed)" in sqlite and "a target was missed" in sqlite
        assert "ratio 0.7 (>= 0.6: held)" in postgresql and "all targets held" in postgresql
        assert "- machine: x86_64, 2 CPUs" in load


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:4000
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   412.31ms  300.12ms   3.22s    80.00%
    Req/Sec    45.55     20.12    90.00     65.00%
  Latency Distribution
     50%  255.00ms
     75%  500.00ms
     90%  900.00ms
     99%    3.22s
  912 requests in 10.01s, 1.20MB read
  Non-2xx or 3xx responses: 2
Requests/sec:     91.11
Transfer/sec:    122.00KB
"""


class TestLoadBench:
    def test_wrk_output_is_read_into_figures(self) -> None:
        load = _module("bench/load.py", "bench_load")
        figures = load.parse_wrk(WRK_OUTPUT)
        assert (figures.per_second, figures.p50_ms, figures.p99_ms, figures.requests, figures.non_2xx) == \
            (91.11, 255.0, 3220.0, 912, 2)
        assert figures.socket_errors == "none"

    def test_ci_requiring_postgresql_without_its_url_is_an_error(self, monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
        load = _module("bench/load.py", "bench_load")
        monkeypatch.delenv("GRID_TEST_POSTGRES_URL", raising=False)
        monkeypatch.setenv("GRID_REQUIRE_POSTGRES", "1")
        assert load.main(["--backend", "postgresql", "--json", str(tmp_path / "load.json")]) == 2
        assert not (tmp_path / "load.json").exists()

    def test_ci_runs_it_after_the_tests_into_the_reports_folder(self) -> None:
        script = (ROOT / ".ci" / "run").read_text()
        assert re.search(r"apt-get install .*\bwrk\b", script)
        bench = script.index("python bench/load.py")
        assert script.index("scripts/test\n") < bench < script.index("python scripts/reliability_report.py")
        line = script[bench:script.index("\n", bench)]
        assert "--json .reliability/load.json" in line and "--report-only" in line and "--seconds" in line
