"""A rehearsal that fails half-way leaves nothing behind: its namespaces, their processes (moto's server,
the machines' units) and its system user are gone, and the error says which step failed and why."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from providers.rehearsal import Rehearsal, RehearsalError, namespaces
from tests.rehearsal.conftest import RehearsalKit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_a_machine_that_fails_to_boot_is_reported_and_everything_is_torn_down(
    rehearsal_kit: RehearsalKit, tmp_path: Path
) -> None:
    empty_venv = tmp_path / "no-venv"  # the machines find no gridctl at /opt/gridctl/venv
    empty_venv.mkdir()
    rehearsal = Rehearsal(cloud="aws", work_dir=tmp_path / "work", venv=empty_venv, build=rehearsal_kit.build,
                          say=lambda _: None)
    (tmp_path / "work").mkdir()
    with pytest.raises(RehearsalError, match=r"node: runcmd bootstrap.py install exited 1"), rehearsal:
        pass
    assert rehearsal.tag and not [name for name in namespaces() if name.startswith(rehearsal.tag + "-")]
    assert not [user.pw_name for user in pwd.getpwall() if user.pw_name.startswith(rehearsal.tag + "-")]
    assert rehearsal.side is not None and rehearsal.side.processes
    assert all(process.poll() is not None for process in rehearsal.side.processes)
    # The machine's cloud-init log kept what the bootstrap said: it fetched and checked the build first.
    log = (tmp_path / "work" / "node" / "var" / "log" / "cloud-init-output.log").read_text()
    assert "/opt/gridctl/venv/bin/python" in log
