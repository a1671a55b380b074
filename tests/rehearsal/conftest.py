"""Fixtures of the network-namespace rehearsal (providers/rehearsal.py): the operator's build and the shared
virtualenv, made once per test session for every rehearsed cloud, and a check that this machine can rehearse
(root, ``ip``, ``setpriv``, Caddy, moto): without them the tests fail and say what is missing, never skip."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class RehearsalKit:
    build: Any  # providers.build.MachineBuild
    venv: Path


@pytest.fixture(scope="session")
def rehearsal_kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RehearsalKit]:
    from providers.build import operator_build
    from providers.rehearsal import host_problems, shared_venv

    problems = host_problems()
    if problems:
        pytest.fail("the network-namespace rehearsal cannot run on this machine: " + "; ".join(problems)
                    + (" (CI runs as root with .ci/run's packages)" if os.environ.get("CI") else ""))
    base = tmp_path_factory.mktemp("gridrh-kit")
    build = operator_build(base / "build")
    yield RehearsalKit(build=build, venv=shared_venv(build, base / "cache", say=lambda text: print(text)))
