"""What a cloud deployment's machines boot, taken from the Pulumi program itself, and the tools that check it.

First slice of the rehearsal (issue 12, What to build 3): each cloud's program runs under Pulumi's mocks
(``providers/<cloud>/program.py`` ``plan``), and the user-data it hands the Node and the Workers is checked with
the real tools a machine would use:

- ``cloud-init schema --config-file`` (Debian's cloud-init) on each user-data;
- ``systemd-analyze verify`` on every unit it writes, in a root directory made by the test (see
  :func:`unit_root`: systemd-analyze needs the units a unit refers to, such as ``sysinit.target``, and the
  executables of ``ExecStart=`` to exist under that root; no running systemd is needed);
- ``caddy adapt`` and ``caddy validate`` on the Caddyfile, with the environment file cloud-init writes.

The templates are written so their commands run outside a VM too (environment files, ``GRIDCTL_PREFIX`` and
``GRIDCTL_*_URL`` in bootstrap.py): bringing the machines up in network namespaces is the next slice.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from providers.stack import DeclaredResource
from tests.cloud_checks import one, settings

CLOUDS = ("aws", "gcp", "azure")
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}
TOOLS = {"cloud-init": shutil.which("cloud-init"), "systemd-analyze": shutil.which("systemd-analyze"),
         "caddy": shutil.which("caddy")}
SYSTEM_UNITS = Path("/usr/lib/systemd/system")  # sysinit.target, network-online.target, caddy.service...


@dataclass(frozen=True)
class Machines:
    """One deployment's rendered user-data: the Node and one per Worker (every Worker boots the same), and the
    Network machine's with ``network=True`` (empty otherwise)."""

    cloud: str
    node: str
    workers: tuple[str, ...]
    network: str = ""


def _user_data(cloud: str, plan: list[DeclaredResource]) -> tuple[str, str]:
    if cloud == "aws":
        node = one(plan, "aws:ec2/instance:Instance", "demo-node-instance").inputs["userData"]
        worker = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs["userData"]
        return node, base64.b64decode(worker).decode()
    if cloud == "gcp":
        node = one(plan, "gcp:compute/instance:Instance", "demo-node-instance").inputs["metadata"]["user-data"]
        worker = one(plan, "gcp:compute/instanceTemplate:InstanceTemplate", "demo-workers-template")
        return node, worker.inputs["metadata"]["user-data"]
    vm = one(plan, "azure-native:compute:VirtualMachine", "demo-node-vm").inputs["osProfile"]["customData"]
    scale_set = one(plan, "azure-native:compute:VirtualMachineScaleSet", "demo-workers-vmss").inputs
    worker = scale_set["virtualMachineProfile"]["osProfile"]["customData"]
    return base64.b64decode(vm).decode(), base64.b64decode(worker).decode()


@cache
def machines(cloud: str, **overrides: Any) -> Machines:
    """The Node and two Workers of a deployment on ``cloud``, from its program under mocks."""
    import importlib

    program = importlib.import_module(f"providers.{cloud}.program")
    spec = settings(region=REGIONS[cloud], workers=2, **overrides)
    plan = program.plan(spec, redact=False)
    node, worker = _user_data(cloud, plan)
    return Machines(cloud=cloud, node=node, workers=(worker,) * spec.workers,
                    network=network_user_data(cloud, plan) if spec.network else "")


def network_user_data(cloud: str, plan: list[DeclaredResource]) -> str:
    """The Network machine's user-data (--network), as the program declares it."""
    if cloud == "aws":
        return str(one(plan, "aws:ec2/instance:Instance", "demo-network-instance").inputs["userData"])
    if cloud == "gcp":
        return str(one(plan, "gcp:compute/instance:Instance", "demo-network-instance").inputs["metadata"]["user-data"])
    vm = one(plan, "azure-native:compute:VirtualMachine", "demo-network-vm").inputs["osProfile"]["customData"]
    return base64.b64decode(vm).decode()


def written_files(user_data: str) -> dict[str, str]:
    return {entry["path"]: entry["content"] for entry in yaml.safe_load(user_data)["write_files"]}


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False)


def _stand_ins(root: Path, unit_text: str) -> None:
    for line in unit_text.splitlines():
        if line.startswith(("ExecStart=", "ExecStop=", "ExecReload=")) and line.split("=", 1)[1].strip():
            program = line.split("=", 1)[1].split()[0].lstrip("-@+!")
            stand_in = root / program.lstrip("/")
            if not stand_in.exists():
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                stand_in.write_text("#!/bin/sh\nexit 0\n")
                stand_in.chmod(0o755)


def unit_root(root: Path, files: dict[str, str], system_units: tuple[str, ...] = ()) -> list[Path]:
    """A root directory for ``systemd-analyze verify --root``: the system's unit directory (copied: symlinks
    would lead out of the root), the units and drop-ins the user-data writes, and an executable stand-in for each
    ``Exec*=`` program (the real ones come from the wheel at boot). Returns the user-data's units, then the
    ``system_units`` asked for (``caddy.service``, which the user-data extends with a drop-in)."""
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True, dirs_exist_ok=True)
    units = []
    for path, content in files.items():
        if not path.startswith("/etc/systemd/system/"):
            continue
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        if target.suffix == ".service":
            units.append(target)
        _stand_ins(root, content)
    for name in system_units:
        unit = root / SYSTEM_UNITS.relative_to("/") / name
        _stand_ins(root, unit.read_text())
        units.append(unit)
    return units
