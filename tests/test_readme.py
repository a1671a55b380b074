"""The README is the first hour of a new user: its commands are the ones CI runs, and its walk-through runs.

(a) The quick start's install-and-deploy command and the test command are fenced shell lines in README.md;
    .ci/run must run each of them verbatim (and in that order), in the fresh virtualenv it builds.
(b) The "Data, training and releases" walk-through runs as written against a live Node with Workers: the
    Owner's shell lines through the real console script, Ada's notebook block in its own process, and the
    officer approving in between (tests/readme.py does the running; CI's smoke runs the same).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from grid_runtime.privacy import accounting, events
from tests import readme
from tests.ray_cluster import RayNode

CI_RUN = readme.ROOT / ".ci" / "run"


def ci_lines() -> list[str]:
    return [line.strip() for line in CI_RUN.read_text().splitlines()]


def test_the_readme_has_the_two_commands() -> None:
    assert readme.ci_commands() == ["pip install -c constraints.txt -e . && gridctl deploy local --workers 2",
                                    "scripts/test"]


def test_ci_runs_the_readmes_commands_verbatim_and_in_order() -> None:
    lines = ci_lines()
    positions = []
    for command in readme.ci_commands():
        assert command in lines, f".ci/run does not run the README's command as written: {command!r}"
        positions.append(lines.index(command))
    assert positions == sorted(positions)


def test_ci_runs_them_in_a_fresh_virtualenv_it_activates() -> None:
    lines = ci_lines()
    venv = next(i for i, line in enumerate(lines) if re.search(r"\bpython3? -m venv\b", line))
    activate = next(i for i, line in enumerate(lines) if re.match(r"(source|\.) \S*bin/activate", line))
    first = lines.index(readme.ci_commands()[0])
    assert venv < activate < first
    assert any("scripts/smoke.py" in line for line in lines[first:lines.index("scripts/test")]), \
        "the walk-through smoke runs between the quick start and the test command"


def test_the_walkthrough_parses_into_its_steps() -> None:
    walk = readme.Walkthrough.from_readme()
    assert walk.admin == ['gridctl users add --email ada@example.com --role "Data Scientist"']
    assert [line.split()[:3] for line in walk.owner] == [["gridctl", "datasets", "create"],
                                                       ["gridctl", "users", "set-budget"]]
    assert ".wait()" in walk.notebook and "get(wait=True)" in walk.notebook
    assert [line.split()[:3] for line in walk.officer] == [["gridctl", "requests", "list"]] + \
        [["gridctl", "requests", verb] for verb in ("approve", "show", "approve")]


def _readme_job() -> tuple[int, float, int, int, float]:
    """The README's numbers: rows of the cohort, Ada's budget, batch size, epochs and σ."""
    walk = readme.Walkthrough.from_readme()
    rows = int(re.search(r"size=\((\d+), 10\)", walk.cohort).group(1))  # type: ignore[union-attr]
    budget = float(walk.owner[1].split()[-1])
    batch = int(re.search(r"batch_size=(\d+)", walk.notebook).group(1))  # type: ignore[union-attr]
    epochs = int(re.search(r"epochs=(\d+)", walk.notebook).group(1))  # type: ignore[union-attr]
    sigma = float(re.search(r"noise_multiplier=([\d.]+)", walk.notebook).group(1))  # type: ignore[union-attr]
    return rows, budget, batch, epochs, sigma


def test_the_readmes_job_fits_the_budget_it_sets() -> None:
    """Charged at admission under the Rényi filter at the node's order: it must fit ε 3 (and the figures the
    README quotes must be the ones the Node computes)."""
    rows, budget, batch, epochs, sigma = _readme_job()
    rate, steps = accounting.dp_sgd_plan(rows=rows, batch_size=batch, epochs=epochs)
    event = events.dp_sgd_event(sample_rate=rate, noise_multiplier=sigma, steps=steps)
    rdp = accounting.rdp_at_order(event)
    assert accounting.admits(0.0, rdp, budget)
    own, under_filter = accounting.epsilon(event), accounting.epsilon_from_rdp(rdp)
    text = readme.README.read_text()
    assert f"σ = {sigma:g} costs ε {own:.2f} on its own and ε {under_filter:.2f} under the Node's Rényi filter" \
        in " ".join(text.split())
    assert f"({steps} steps)" in text and f"sampling rate of {rate:g}" in " ".join(text.split())
    # and the README's counter-example: σ = 1 would be refused
    louder = events.dp_sgd_event(sample_rate=rate, noise_multiplier=1.0, steps=steps)
    assert not accounting.admits(0.0, accounting.rdp_at_order(louder), budget)
    assert f"ε {accounting.epsilon_from_rdp(accounting.rdp_at_order(louder)):.1f} under the filter" in \
        " ".join(text.split())


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(ray_node: RayNode, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "GRIDCTL_HOME": str(home), "GRIDCTL_URL": ray_node.url,
           "GRIDCTL_TOKEN": ray_node.owner_token, "COLUMNS": "200"}
    for name in ("GRIDCTL_CONTEXT", "GRIDCTL_OUTPUT", "GRIDCTL_DEBUG"):
        env.pop(name, None)
    gridctl = readme.Gridctl(env=env, cwd=tmp_path)

    summary = readme.run(ray_node.url, gridctl, tmp_path, timeout=600)

    rows, budget, batch, epochs, sigma = _readme_job()
    assert summary["job_status"] == "succeeded"
    assert summary["hits"] >= 1
    rate, steps = accounting.dp_sgd_plan(rows=rows, batch_size=batch, epochs=epochs)
    event = events.dp_sgd_event(sample_rate=rate, noise_multiplier=sigma, steps=steps)
    assert summary["epsilon"] == pytest.approx(accounting.epsilon(event, summary["delta"]), rel=1e-6)
    assert summary["weights"] == ["0.bias", "0.weight", "2.bias", "2.weight"]  # the README's three layers
    spent = summary["budget"]["spent_epsilon"]
    assert 0 < spent <= budget
    assert spent == pytest.approx(accounting.epsilon_from_rdp(accounting.rdp_at_order(event)), rel=1e-6)
    # the officer's lines ran as a person would run them, and the release was the one approved
    log = "\n".join(gridctl.log)
    release = summary["release"]
    assert f"$ gridctl requests approve {release['id']} --fingerprint {release['fingerprint']}" in log
