"""docs/threat-model.md stays honest: every test it names exists, and every attack in tests/attacks/ is named."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)`")


def _references() -> list[tuple[str, str]]:
    return REFERENCE.findall(DOC.read_text(encoding="utf-8"))


def _tests_in(path: Path) -> set[str]:
    """``Class::test_name`` and ``test_name`` for every test function the file defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found |= {f"{node.name}::{item.name}" for item in node.body
                      if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")}
    return found


class TestThreatModelDoc:
    def test_the_doc_names_tests(self) -> None:
        assert len(_references()) >= 20

    def test_every_test_the_doc_names_exists(self) -> None:
        missing = [f"{path}::{name}" for path, name in _references()
                   if not (ROOT / path).is_file() or name not in _tests_in(ROOT / path)]
        assert missing == []

    def test_every_attack_test_is_named_in_the_doc(self) -> None:
        named = {f"{path}::{name}" for path, name in _references()}
        here = Path(__file__).resolve().parent
        attacks = {f"tests/attacks/{path.name}::{name}" for path in sorted(here.glob("test_*.py"))
                   if path.name != Path(__file__).name for name in _tests_in(path)}
        assert sorted(attacks - named) == []
