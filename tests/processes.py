"""This machine's process tree, read from /proc (for tests and benches that find a deployment's processes)."""

from __future__ import annotations

from pathlib import Path


def children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(raw[raw.rindex(")") + 2:].split()[1])  # after the command name, which may hold spaces
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(roots: list[int]) -> set[int]:
    """The roots and every process below them."""
    tree, found, todo = children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return found
