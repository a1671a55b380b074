"""Start-up is a feature: ``gridctl --help`` must not import the heavy stacks (ML, clusters, clouds, server)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "ray", "pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_azure_native", "fastapi", "sqlalchemy",
         "boto3", "google.cloud", "azure", "opacus", "opendp", "uvicorn", "alembic", "grid_runtime"]

# A fresh interpreter runs the app's --help in process, then reports what it imported.
PROBE = """
import json, sys
from gridctl.cli.app import app
try:
    app({args!r}, prog_name="gridctl")
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin", "GRIDCTL_HOME": "/nonexistent"})
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES=")))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", [["--help"], ["users", "--help"], ["deploy", "local", "--help"],
                                  ["audit", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    modules = imported_by(*args)
    assert "gridctl.cli.users" in modules  # the probe really built the whole command tree
    assert heavy_in(modules) == []


def test_importtime_of_the_console_script_names_nothing_heavy() -> None:
    """The same, as ``python -X importtime`` sees the real entry point."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c",
                             "import sys; sys.argv = ['gridctl', '--help']; from gridctl.cli.app import main; main()"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "gridctl.cli.app" in imported
    assert heavy_in(imported) == []


def test_the_sdk_imports_nothing_heavy() -> None:
    probe = ("import json, sys, gridctl; gridctl.connect; import gridctl.sdk.node; "
             "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    modules = set(json.loads(result.stdout))
    assert {"gridctl.sdk.connect", "httpx"} <= modules
    assert heavy_in(modules) == []
