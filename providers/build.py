"""Ship the operator's build: the cloud machines run exactly the gridctl that deployed them.

:func:`operator_build` makes two files in a directory:

- a wheel of the gridctl this process runs, from the files its packages are imported from (a checkout, an
  editable install or a regular one) and the installed distribution's metadata. The wheel is reproducible: its
  members are sorted and dated 1980-01-01, so the same source gives the same sha256, and a redeploy with an
  unchanged CLI changes nothing on the machines;
- the constraints that pin its dependency tree: the checkout's ``constraints.txt`` (the full lock made by
  ``scripts/lock``: resolved for CI's CPython 3.11 and checked to install, version for version and from wheels, on
  the machines' CPython 3.12) when there is one, else the versions installed here of every package gridctl needs,
  with torch pinned to its CPU build (``+cpu``, from :data:`TORCH_CPU_INDEX`).

The cloud programs upload both to the deployment's bucket as stack objects and put their sha256 in the
user-data; each machine fetches them with its own identity, refuses a file whose sha256 differs, and installs
the wheel under the constraints. Nothing is ever looked up by name on a package index as ``gridctl``: the
index's ``gridctl`` is someone else's project.

No Pulumi and no cloud SDK here: ``--plan`` and the tests build offline.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import io
import re
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from providers.base import ProviderError

DISTRIBUTION = "gridctl"
#: torch's CPU-only wheels; machines add it as an extra index so no CUDA wheel (gigabytes) is ever installed.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The extras of gridctl a machine installs: every cloud's object store driver (the Node reads its bucket).
MACHINE_EXTRAS = ("s3", "gcs", "azure-storage")
CONSTRAINTS_NAME = "constraints.txt"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # reproducible: the same source gives the same wheel, byte for byte
_SKIPPED_DIRS = {"__pycache__", "node_modules"}  # node_modules: the Admin's build tools (its dist/ goes in)
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


class BuildFailed(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(f"could not build the gridctl wheel the machines install: {message}", code="deploy_failed")


@dataclass(frozen=True)
class MachineBuild:
    """The build a deployment's machines install: where its two files are on this machine, and their sha256."""

    version: str
    wheel_path: str
    wheel_sha256: str
    constraints_path: str
    constraints_sha256: str

    @property
    def wheel_name(self) -> str:
        return Path(self.wheel_path).name

    def object_key(self, kind: str) -> str:
        """Where a file goes in the deployment's bucket: under its own sha256, so a new build is a new object
        and a machine booting during an update never reads a half-replaced file."""
        if kind == "wheel":
            return f"gridctl/build/{self.wheel_sha256[:16]}/{self.wheel_name}"
        return f"gridctl/build/{self.constraints_sha256[:16]}/{CONSTRAINTS_NAME}"

    def as_record(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_record(cls, values: dict[str, Any]) -> MachineBuild:
        return cls(**{key: str(values[key]) for key in ("version", "wheel_path", "wheel_sha256",
                                                         "constraints_path", "constraints_sha256")})

    def exists(self) -> bool:
        return (Path(self.wheel_path).is_file() and Path(self.constraints_path).is_file()
                and sha256_file(Path(self.wheel_path)) == self.wheel_sha256
                and sha256_file(Path(self.constraints_path)) == self.constraints_sha256)

    def machine_context(self, extra: str) -> dict[str, str]:
        """What the machines' cloud-init is rendered with: object keys, names and digests (no local paths)."""
        return {
            "version": self.version,
            "wheel_key": self.object_key("wheel"),
            "wheel_name": self.wheel_name,
            "wheel_sha256": self.wheel_sha256,
            "constraints_key": self.object_key("constraints"),
            "constraints_sha256": self.constraints_sha256,
            "extra": extra,
            "torch_index": TORCH_CPU_INDEX,
        }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- where the running gridctl comes from -----------------------------------------------------------------

def _distribution() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise BuildFailed("gridctl is not installed as a distribution here (pip install -e . in a checkout)") from None


def checkout_root() -> Path | None:
    """The source checkout this gridctl is imported from (its pyproject.toml names the project), or ``None``."""
    spec = importlib.util.find_spec("gridctl")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]).resolve().parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        project = tomllib.loads(pyproject.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if project.get("project", {}).get("name") == DISTRIBUTION else None


def _package_names(dist: importlib.metadata.Distribution, root: Path | None) -> list[str]:
    if root is not None:
        project = tomllib.loads((root / "pyproject.toml").read_text())
        packages = project.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        names = [str(p) for p in packages.get("packages", [])]
        if names:
            return names
    tops = {f.parts[0] for f in dist.files or ()
            if len(f.parts) > 1 and not f.parts[0].endswith((".dist-info", ".data")) and f.parts[0] != ".."}
    return sorted(tops) or ["gridctl", "grid_runtime", "providers", "templates"]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BuildFailed(f"the package {name!r} is not importable here")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _package_files(name: str) -> Iterator[tuple[str, Path]]:
    """(path in the wheel, file on disk) of every file of package ``name``, caches excluded."""
    base = _package_dir(name)
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if (not path.is_file() or _SKIPPED_DIRS & set(relative.parts) or path.suffix in _SKIPPED_SUFFIXES
                or any(part.startswith(".") for part in relative.parts)):
            continue
        yield f"{name}/{relative.as_posix()}", path


# --- the wheel ------------------------------------------------------------------------------------------------

def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_wheel(out_dir: Path) -> tuple[str, Path]:
    """Write the wheel of the running gridctl to ``out_dir``; returns (version, path)."""
    dist = _distribution()
    version = dist.version
    metadata = dist.read_text("METADATA")
    if not metadata:
        raise BuildFailed("the installed distribution has no METADATA")
    entry_points = dist.read_text("entry_points.txt") or ""
    root = checkout_root()
    members: list[tuple[str, bytes]] = []
    for package in _package_names(dist, root):
        members.extend((arcname, path.read_bytes()) for arcname, path in _package_files(package))
    if not any(name.startswith("grid_runtime/") for name, _ in members):
        raise BuildFailed("grid_runtime (the Node) is missing from the packages found")
    dist_info = f"{DISTRIBUTION}-{version}.dist-info"
    wheel_file = "Wheel-Version: 1.0\nGenerator: gridctl providers/build.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members += [(f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel_file.encode())]
    if entry_points:
        members.append((f"{dist_info}/entry_points.txt", entry_points.encode()))
    members.sort(key=lambda member: member[0])
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in members)
    record += f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            _zip_entry(archive, name, data)
        _zip_entry(archive, f"{dist_info}/RECORD", record.encode())
    path = out_dir / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return version, path


# --- the constraints -------------------------------------------------------------------------------------------

_TORCH_PIN = re.compile(r"^(torch\s*==\s*)([0-9][0-9A-Za-z.]*)(\s*(?:;.*)?)$")


_PIN_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==", re.MULTILINE)


def cpu_torch(text: str) -> str:
    """Pin torch to its CPU build: ``torch==X`` becomes ``torch==X+cpu`` (a pin with a local label is kept).
    Hashes of the pinned torch, if the lock has some, are dropped with it: they are the CUDA wheels'."""
    lines = text.splitlines()
    out: list[str] = []
    skipping_hashes = False
    for line in lines:
        stripped = line.strip()
        if skipping_hashes and stripped.startswith("--hash"):
            continue
        skipping_hashes = False
        bare = stripped.rstrip("\\").rstrip()
        match = _TORCH_PIN.match(bare)
        if match and "+" not in match.group(2):
            out.append(f"{match.group(1)}{match.group(2)}+cpu{match.group(3)}")
            skipping_hashes = stripped.endswith("\\")
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_pins(extras: Iterable[str] = MACHINE_EXTRAS) -> list[str]:
    """``name==version`` of every installed package in gridctl's dependency tree (with ``extras``, and Ray's
    ``default`` extra, which ``ray start`` needs on the machines), for a gridctl without a checkout's lock."""
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    pending: list[tuple[str, frozenset[str]]] = [(DISTRIBUTION, frozenset(extras)), ("ray", frozenset({"default"}))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, wanted = pending.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _canonical(name) != DISTRIBUTION:
            pins[_canonical(name)] = dist.version
        for text in dist.requires or ():
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def constraints_text(version: str) -> str:
    """The constraints a machine installs under: the checkout's lock, or the installed tree's versions."""
    root = checkout_root()
    lock = root / CONSTRAINTS_NAME if root else None
    installed = installed_pins()
    if lock is not None and lock.is_file():
        # The project itself never comes from the lock (the wheel is installed by path); nor an editable line,
        # which pip refuses in a constraints file.
        body = "".join(line for line in lock.read_text().splitlines(keepends=True)
                       if not line.startswith(("-e ", "--editable"))
                       and not re.match(rf"{DISTRIBUTION}\s*(==|@|\[)", line))
        locked = {_canonical(match.group(1)) for match in _PIN_NAME.finditer(body)}
        missing = [pin for pin in installed if _canonical(pin.split("==")[0]) not in locked]
        body = body.rstrip("\n") + "\n"
        if missing:  # a partial lock: the rest of the tree at the versions tested here
            body += "# not in the lock: the versions installed beside the deploying gridctl\n"
            body += "\n".join(missing) + "\n"
        source = f"{lock.name} of the checkout"
    else:
        body, source = "\n".join(installed) + "\n", "the versions installed beside the deploying gridctl"
    header = (f"# gridctl {version}: what the deployment's machines install under (from {source}).\n"
              f"# torch comes from its CPU index ({TORCH_CPU_INDEX}).\n")
    return header + cpu_torch(body)


def operator_build(out_dir: Path) -> MachineBuild:
    """Build the wheel and constraints of the running gridctl into ``out_dir`` (created owner-only)."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in out_dir.glob("*.whl"):
        stale.unlink()
    version, wheel = build_wheel(out_dir)
    constraints = out_dir / CONSTRAINTS_NAME
    constraints.write_text(constraints_text(version))
    return MachineBuild(version=version, wheel_path=str(wheel), wheel_sha256=sha256_file(wheel),
                        constraints_path=str(constraints), constraints_sha256=sha256_file(constraints))
