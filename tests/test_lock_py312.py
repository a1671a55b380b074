"""Issue 12: constraints.txt (scripts/lock) is resolved for CPython 3.11, the Python CI tests with, but the cloud
machines install the operator's wheel under it with Ubuntu 24.04's CPython 3.12 (docs/clouds/machines.md). These
tests resolve the committed lock for CPython 3.12 on manylinux x86_64 against PyPI (uv's default index), from
wheels only, as pip installs it on a machine, and check that every pin has a wheel there and that 3.12 needs nothing
the lock lacks.

torch is resolved from PyPI at the pinned version (PyTorch's CPU index is out of reach here; both publish the same
Python tags); the CUDA packages PyPI's torch brings are not the CPU build's and are not expected in the lock.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
#: Ubuntu 24.04: glibc 2.39, so pip takes manylinux_2_5 ... manylinux_2_39 wheels.
PLATFORM = "x86_64-manylinux_2_39"
_TORCH_CUDA = re.compile(r"^(nvidia-|cuda-|triton$)")
_NO_WHEEL = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s|,)+has no (?:usable )?wheels")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _uv() -> str:
    try:
        from uv import find_uv_bin  # the test extra's uv

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            pytest.fail("uv is missing: pip install -c constraints.txt -e '.[test]' installs it")
        return found


def pins(text: str) -> dict[str, str]:
    """{canonical name: version} of a constraints file's ``name==version [; marker]`` lines."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement = Requirement(line)
        [spec] = requirement.specifier
        assert spec.operator == "==", line
        out[_canonical(requirement.name)] = spec.version
    return out


@dataclass
class Check:
    ok: bool
    no_wheel: list[str]  # "name==version" of the pins without a wheel for CPython 3.12 manylinux x86_64
    unpinned: list[str]  # what 3.12 resolves that the lock does not pin at that version
    output: str


def check_for_python(lock_text: str, tmp: Path, project: bool = True, python: str = "3.12") -> Check:
    """Resolve ``lock_text`` for CPython ``python`` on manylinux x86_64 from PyPI, binary only: each pin as a
    requirement and as a constraint, and (``project``) the project with all its extras and ``ray[default]`` (what
    the machines install) under it."""
    body = "".join(re.sub(r"^torch==([^+ ;]+)\+cpu", r"torch==\1", line) + "\n"
                   for line in lock_text.splitlines() if line.strip() and not line.startswith("#"))
    requirements = tmp / "pins.txt"
    requirements.write_text(body)
    sources: list[str] = []
    if project:  # gridctl with every extra, and ray[default], which the machines install beside it
        machines = tmp / "machines.txt"
        machines.write_text("ray[default]\n")
        sources = [str(ROOT / "pyproject.toml"), str(machines), "--all-extras"]
    done = subprocess.run(
        [_uv(), "pip", "compile", *sources, str(requirements), "-c", str(requirements),
         "--python-version", python, "--python-platform", PLATFORM, "--only-binary", ":all:",
         "--no-annotate", "--no-header", "--quiet"],
        capture_output=True, text=True, timeout=240, cwd=tmp,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("UV_")}, "UV_NO_CONFIG": "1"},
    )
    if done.returncode != 0:
        names = sorted({f"{m.group(1)}=={m.group(2)}" for m in _NO_WHEEL.finditer(done.stderr)})
        return Check(False, names, [], done.stderr)
    locked = pins(lock_text)
    locked = {name: version.split("+")[0] if name == "torch" else version for name, version in locked.items()}
    resolved = pins(done.stdout)
    unpinned = sorted(f"{name}=={version}" for name, version in resolved.items()
                      if not _TORCH_CUDA.match(name) and locked.get(name) != version)
    return Check(not unpinned, [], unpinned, done.stdout)


def test_every_pin_of_the_lock_installs_on_cpython_312_from_wheels(tmp_path: Path) -> None:
    check = check_for_python(LOCK.read_text(), tmp_path)
    assert not check.no_wheel, f"pins without a CPython 3.12 manylinux x86_64 wheel: {check.no_wheel}"
    assert check.ok, ("CPython 3.12 needs packages the lock does not pin (scripts/lock adds them): "
                      f"{check.unpinned}\n{check.output}")
    resolved = pins(check.output)
    assert resolved["torch"] == pins(LOCK.read_text())["torch"].split("+")[0]
    assert {"fastapi", "ray", "opacus", "numpy", "s3fs", "pulumi", "prometheus-client", "py-spy"} <= set(resolved)


def test_the_check_names_a_pin_without_a_312_wheel(tmp_path: Path) -> None:
    """The check can fail, and says which package: numpy 1.24.4 has wheels up to CPython 3.11 and an sdist."""
    check = check_for_python("# a lock\nnumpy==1.24.4\npackaging==26.4\n", tmp_path, project=False)
    assert not check.ok
    assert check.no_wheel == ["numpy==1.24.4"], check.output
    # the same pin is fine for CPython 3.11: what failed is the wheel for 3.12, not the resolution
    assert check_for_python("numpy==1.24.4\n", tmp_path, project=False, python="3.11").ok


def test_the_check_names_what_312_needs_and_the_lock_lacks(tmp_path: Path) -> None:
    """torch 2.5 needs setuptools on CPython 3.12 only (``setuptools; python_version >= "3.12"``): a lock of its tree
    made for 3.11 passes for 3.11 and is caught for 3.12; scripts/lock adds such a pin with a
    ``python_version == '3.12'`` marker."""
    locked = pins(LOCK.read_text())
    tree = ["filelock", "fsspec", "jinja2", "markupsafe", "mpmath", "networkx", "typing-extensions"]
    text = "torch==2.5.1\nsympy==1.13.1\n" + "".join(f"{name}=={locked[name]}\n" for name in tree)
    assert check_for_python(text, tmp_path, project=False, python="3.11").ok
    check = check_for_python(text, tmp_path, project=False)
    assert not check.ok and not check.no_wheel
    assert [pin.split("==")[0] for pin in check.unpinned] == ["setuptools"], check.unpinned


def test_the_lock_has_one_version_of_each_package_and_the_cpu_torch() -> None:
    lines = [line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    names = [_canonical(Requirement(line).name) for line in lines]
    assert len(names) == len(set(names)), "a package pinned twice: the machines must run the versions CI tests"
    locked = pins(LOCK.read_text())
    assert re.fullmatch(r"2\.13\.0\+cpu", locked["torch"])
    assert not [name for name in locked if _TORCH_CUDA.match(name)]
    assert "gridctl" not in locked


def test_this_python_has_the_locked_versions() -> None:
    """CI installs ``pip install -c constraints.txt -e '.[test]'`` into a fresh virtualenv: what it tests is the
    lock, version for version."""
    locked = pins(LOCK.read_text())
    differing = sorted(f"{name}: installed {dist.version}, locked {locked[name]}"
                       for dist in importlib.metadata.distributions()
                       if (name := _canonical(dist.metadata["Name"])) in locked and dist.version != locked[name])
    assert not differing, differing
    assert {"fastapi", "torch", "uv", "pytest"} <= {_canonical(d.metadata["Name"])
                                                   for d in importlib.metadata.distributions()}
