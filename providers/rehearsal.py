"""A rehearsal of a cloud deployment's machines on this machine (issue 12, What to build 3).

``gridctl deploy <cloud> --rehearse`` and ``tests/rehearsal/test_netns_*.py`` use this module. It takes what
the cloud's Pulumi program would boot (the program runs under Pulumi's mocks, with the operator's real build
from :mod:`providers.build`) and brings the Node and two Workers up here, each in a network namespace of its
own, with the cloud's APIs played by an emulator:

- **Network.** Namespaces named ``gridrh-<pid>-<n>-<role>``: a ``lan`` one holding a bridge, one per machine
  (``node``, ``worker1``, ``worker2``), one for the cloud's endpoints (``cloud``) and one for the operator
  (``operator``), each joined to the bridge by a veth pair. Every address (the Node's private ``10.42.1.10``,
  its public address from ``/etc/gridctl/caddy.env``, the instance metadata's ``169.254.169.254``) is set
  inside these namespaces only; nothing is added to the host's network. Leftovers of a rehearsal whose
  process is gone are removed at start; everything is torn down after, also on failure.
- **Filesystem.** Each machine has its own root directory on the host; every process of a machine runs in a
  mount namespace (``ip netns exec`` makes one) where that directory's ``/opt/gridctl``, ``/var/lib/gridctl``,
  ``/etc/gridctl``, ``/etc/caddy`` and ``/var/lib/caddy`` are bind-mounted at their real paths, so the
  rendered files and units run unchanged. ``/opt/gridctl/venv`` is one virtualenv shared by every rehearsed
  machine (:func:`shared_venv`): the operator's wheel and constraints installed once, not once per machine.
- **Boot.** cloud-init's ``write_files`` are written to the machine's root with their modes, the service user
  is created, and ``runcmd`` is run in order: ``bootstrap.py install`` fetches and checks the wheel and the
  constraints by sha256 from the emulated bucket (the virtualenv is the shared one), ``bootstrap.py
  secrets`` reads the secrets with the machine's identity, ``systemctl enable --now``/``restart`` start the
  units (:func:`parse_unit`).
- **Units.** Each unit's ``ExecStart=`` runs as its ``User=``/``Group=`` (``setpriv --reuid --regid
  --init-groups``) with its ``Environment=`` and ``EnvironmentFile=`` (plus what systemd sets: ``HOME``,
  ``USER``, ``LOGNAME``, ``SHELL``, ``PATH``), and these sandboxing options reproduced:
  ``NoNewPrivileges=`` (``setpriv --no-new-privs``), ``PrivateTmp=`` (fresh tmpfs on ``/tmp`` and
  ``/var/tmp``), ``AmbientCapabilities=`` (``setpriv --ambient-caps``), ``ProtectSystem=strict|full`` with
  ``ReadWritePaths=`` (read-only remounts of ``/``, ``/usr``, ``/etc`` and the machine's directories but the
  writable paths), and ``Restart=`` with ``RestartSec=`` (an exited unit is started again as its policy says, a
  Worker's Ray before the head is up for one; after :data:`MAX_RESTARTS` restarts it fails the rehearsal with its
  log, where systemd would go on). Checked by ``systemd-analyze verify`` only
  (tests/rehearsal/test_first_boot.py): ``ProtectHome=`` (this machine's Python may live under ``/root``),
  ``ExecStop=`` (processes are stopped by pid), ``LimitNOFILE=``, ``LimitNPROC=``, ``Type=notify``, ordering
  (``After=``/``Wants=``; units start in ``runcmd``'s order).
- **Users.** The units' ``User=grid`` is played by a system user ``gridrh-<pid>-<n>-grid`` (created, then
  removed): the same name cannot be taken on a shared machine. Debian's ``caddy`` user runs Caddy.
- **The cloud.** One small class per cloud (:class:`CloudSide`, :data:`CLOUD_SIDES`) starts what plays its APIs
  in the ``cloud`` namespace (on ``10.42.0.2`` and the metadata address ``169.254.169.254``), says what the
  machines' environment and ``/etc/hosts`` add, and seeds the bucket and the secrets and reads the published TLS
  root as the operator (in the operator's namespace, with the operator's scripts below).
  AWS (:class:`AwsSide`): moto's server (S3, Secrets Manager and the instance metadata service); the machines
  find its S3 and Secrets Manager through ``AWS_ENDPOINT_URL``, the one variable the rehearsal adds to their
  environment, and take their credentials from its metadata service.
  GCP (:class:`GcpSide`): PyPI's gcp-storage-emulator for Cloud Storage (``STORAGE_EMULATOR_HOST``, which gcsfs
  honours, and bootstrap.py's ``GRIDCTL_GCP_STORAGE_URL``) and :mod:`providers.cloud_fakes` for the metadata
  server and Secret Manager, where no emulator exists. The machines reach the metadata server by its real name,
  ``metadata.google.internal`` (each machine's namespace has an ``/etc/hosts`` naming it, as a GCE image's
  does): bootstrap.py and google-auth (gcsfs's credentials) run with their default metadata URLs.
  Azure (:class:`AzureSide`): Azurite from the npm registry for Blob storage, over TLS from a throwaway CA and
  with OAuth bearer tokens, reached by the storage account's real name (``<account>.blob.core.windows.net`` in
  each machine's ``/etc/hosts``; the CA through ``SSL_CERT_FILE``), so adlfs and bootstrap.py use their default
  URLs; :mod:`providers.cloud_fakes` plays IMDS (the managed identity's tokens) and Key Vault
  (``GRIDCTL_AZURE_VAULT_URL``).
"""

from __future__ import annotations

import abc
import base64
import contextlib
import importlib
import ipaddress
import itertools
import json
import os
import pwd
import re
import secrets as secrets_module
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import yaml

from providers.base import ProviderError

PREFIX = "gridrh-"
_REHEARSALS = itertools.count(1)  # several rehearsals in one process get names of their own
REHEARSED = ("aws", "gcp", "azure")  # clouds whose machines can be rehearsed here
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}
NAME = "rehearsal"
#: Paths a machine has of its own (bind-mounted from its root directory in every process it runs).
MACHINE_DIRS = ("/opt/gridctl", "/var/lib/gridctl", "/etc/gridctl", "/etc/caddy", "/var/lib/caddy")
VENV_PATH = "/opt/gridctl/venv"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
LAN = ipaddress.ip_network("10.42.0.0/16")  # the programs' network (providers/cloud.py NODE_PRIVATE_IP)
CLOUD_ADDRESS = "10.42.0.2"
OPERATOR_ADDRESS = "10.42.0.3"
METADATA_ADDRESS = "169.254.169.254"
WORKER_ADDRESSES = ("10.42.2.11", "10.42.2.12")
UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Options reproduced outside systemd; every other [Service] key is only checked by systemd-analyze.
REPRODUCED = frozenset({"ExecStart", "User", "Group", "Environment", "EnvironmentFile", "NoNewPrivileges",
                        "PrivateTmp", "AmbientCapabilities", "ProtectSystem", "ReadWritePaths", "Restart",
                        "RestartSec"})
MAX_RESTARTS = 5  # then a unit that keeps exiting fails the rehearsal (systemd would restart it forever)
SERVICE_USER = "grid"  # the rendered units' User=
THROWAWAY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRehearsalKeyNeverUsedToLogIn gridctl-rehearsal"


class RehearsalError(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(f"rehearsal: {message}", code="deploy_failed")


def _run(argv: list[str], *, env: dict[str, str] | None = None, input: str | None = None,
         timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, input=input, timeout=timeout, check=False,
                          cwd="/")
    if check and done.returncode != 0:
        raise RehearsalError(f"`{shlex.join(argv)}` exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}")
    return done


def host_problems(clouds: tuple[str, ...] = REHEARSED) -> list[str]:
    """What this machine lacks to rehearse ``clouds`` (empty when it can)."""
    problems = []
    if not sys.platform.startswith("linux"):
        problems.append("network namespaces need Linux")
    elif os.geteuid() != 0:
        problems.append("it must run as root (network namespaces, mounts, a system user)")
    for tool in ("ip", "setpriv", "mount", "useradd", "userdel", "caddy"):
        if shutil.which(tool) is None:
            problems.append(f"the {tool!r} command is missing")
    for cloud in clouds:
        for module, install in CLOUD_SIDES[cloud].modules.items():
            if importlib.util.find_spec(module) is None:
                problems.append(f"{cloud}: {module} is missing ({install})")
        for tool, install in CLOUD_SIDES[cloud].tools.items():
            if shutil.which(tool) is None:
                problems.append(f"{cloud}: the {tool!r} command is missing ({install})")
    if not (SYSTEM_UNITS / "caddy.service").is_file():
        problems.append("Debian's caddy package is not installed (apt-get install caddy)")
    return problems


def require_rehearsable(cloud: str) -> None:
    """Raise, saying why, unless ``cloud``'s machines can be rehearsed on this machine."""
    if cloud not in REHEARSED:
        raise RehearsalError(f"{cloud}'s machines cannot be rehearsed here (rehearsed: {', '.join(REHEARSED)}; "
                             "see docs/clouds/machines.md)")
    problems = host_problems((cloud,))
    if problems:
        raise RehearsalError("this machine cannot rehearse: " + "; ".join(problems))


# --- systemd units ---------------------------------------------------------------------------------------------

@dataclass
class Unit:
    """A service unit's [Service] section as the rehearsal runs it."""

    name: str
    exec_start: list[str]
    user: str = "root"
    group: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    environment_files: list[str] = field(default_factory=list)  # "-" prefix: optional
    no_new_privileges: bool = False
    private_tmp: bool = False
    ambient_capabilities: list[str] = field(default_factory=list)
    protect_system: str = "no"
    read_write_paths: list[str] = field(default_factory=list)
    restart: str = "no"
    restart_sec: float = 0.1  # systemd's default
    unreproduced: dict[str, str] = field(default_factory=dict)  # [Service] keys only systemd-analyze checks

    def restarts_after(self, code: int) -> bool:
        """Whether systemd starts the unit again after its main process ended with ``code`` (negative: killed
        by that signal)."""
        return {"always": True, "on-success": code == 0, "on-failure": code != 0,
                "on-abnormal": code < 0, "on-abort": code < 0}.get(self.restart, False)


def _seconds(value: str) -> float:
    """A systemd time span as seconds: ``10``, ``10s``, ``500ms``, ``1min 30s``."""
    units = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)\s*([a-z]*)", value.strip().lower()):
        total += float(number) * units.get(unit or "s", 1.0)
    return total


def _boolean(value: str) -> bool:
    return value.strip().lower() in ("1", "yes", "true", "on")


def parse_unit(name: str, text: str, dropins: tuple[str, ...] = ()) -> Unit:
    """The [Service] section of a unit and its drop-ins (later ones add or override, as systemd merges them)."""
    unit = Unit(name=name, exec_start=[])
    for source in (text, *dropins):
        section = ""
        logical: list[str] = []
        for raw in source.replace("\\\n", " ").splitlines():
            logical.append(raw.strip())
        for line in logical:
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            if section != "Service" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "ExecStart":
                unit.exec_start = shlex.split(value.lstrip("-@+!:")) if value else []
            elif key == "User":
                unit.user = value
            elif key == "Group":
                unit.group = value
            elif key == "Environment":
                for item in shlex.split(value):
                    env_key, _, env_value = item.partition("=")
                    unit.environment[env_key] = env_value
            elif key == "EnvironmentFile":
                unit.environment_files.append(value)
            elif key == "NoNewPrivileges":
                unit.no_new_privileges = _boolean(value)
            elif key == "PrivateTmp":
                unit.private_tmp = _boolean(value)
            elif key == "AmbientCapabilities":
                unit.ambient_capabilities += [cap.lower().removeprefix("cap_") for cap in value.split()]
            elif key == "ProtectSystem":
                unit.protect_system = "yes" if _boolean(value) else value.strip().lower()
            elif key == "ReadWritePaths":
                unit.read_write_paths += [path.lstrip("-") for path in value.split()]
            elif key == "Restart":
                unit.restart = value.strip().lower()
            elif key == "RestartSec":
                unit.restart_sec = _seconds(value)
            else:
                unit.unreproduced[key] = value
    if not unit.exec_start:
        raise RehearsalError(f"{name} has no ExecStart=")
    return unit


def read_environment_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


# --- what the cloud's program renders ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rendered:
    cloud: str
    settings: Any  # providers.cloud.CloudSettings
    node: str
    worker: str
    network: str = ""  # the Network machine's user-data (--network), empty without it


def _user_data(cloud: str, name: str, plan: list[Any]) -> tuple[str, str]:
    def one(type_token: str, name: str) -> Any:
        found = [r for r in plan if r.type == type_token and r.name == name]
        if len(found) != 1:
            raise RehearsalError(f"the {cloud} program declares {len(found)} {type_token} named {name}")
        return found[0].inputs

    if cloud == "aws":
        node = one("aws:ec2/instance:Instance", f"{name}-node-instance")["userData"]
        worker = one("aws:ec2/launchTemplate:LaunchTemplate", f"{name}-workers-template")["userData"]
        return node, base64.b64decode(worker).decode()
    if cloud == "gcp":
        node = one("gcp:compute/instance:Instance", f"{name}-node-instance")["metadata"]["user-data"]
        worker = one("gcp:compute/instanceTemplate:InstanceTemplate", f"{name}-workers-template")
        return node, worker["metadata"]["user-data"]
    vm = one("azure-native:compute:VirtualMachine", f"{name}-node-vm")["osProfile"]["customData"]
    scale_set = one("azure-native:compute:VirtualMachineScaleSet", f"{name}-workers-vmss")
    worker = scale_set["virtualMachineProfile"]["osProfile"]["customData"]
    return base64.b64decode(vm).decode(), base64.b64decode(worker).decode()


def _network_user_data(cloud: str, name: str, plan: list[Any]) -> str:
    found = [r.inputs for r in plan if r.name in (f"{name}-network-instance", f"{name}-network-vm")
             and r.type in ("aws:ec2/instance:Instance", "gcp:compute/instance:Instance",
                            "azure-native:compute:VirtualMachine")]
    if len(found) != 1:
        raise RehearsalError(f"the {cloud} program declares {len(found)} Network machines")
    if cloud == "aws":
        return str(found[0]["userData"])
    if cloud == "gcp":
        return str(found[0]["metadata"]["user-data"])
    return base64.b64decode(found[0]["osProfile"]["customData"]).decode()


def render(cloud: str, build: Any, name: str = NAME, *, network: bool = False) -> Rendered:
    """The Node's and a Worker's user-data (and the Network machine's, with ``network``), from the cloud's program
    under Pulumi's mocks, with ``build``."""
    from providers.cloud import CloudSettings, DeploymentSecrets, new_suffix

    settings = CloudSettings(name=name, region=REGIONS[cloud], allow_cidrs=(f"{OPERATOR_ADDRESS}/32",),
                             secrets=DeploymentSecrets.generate(), suffix=new_suffix(), workers=2,
                             project="gridctl-rehearsal", admin_public_key=THROWAWAY_KEY, build=build,
                             network=network)
    program = importlib.import_module(f"providers.{cloud}.program")
    plan = program.plan(settings, redact=False)
    node, worker = _user_data(cloud, name, plan)
    return Rendered(cloud=cloud, settings=settings, node=node, worker=worker,
                    network=_network_user_data(cloud, name, plan) if network else "")


def written_files(user_data: str) -> dict[str, dict[str, str]]:
    return {entry["path"]: entry for entry in yaml.safe_load(user_data)["write_files"]}


def bootstrap_module(source: str, name: str) -> ModuleType:
    """The rendered bootstrap.py's constants (BUCKET, SECRETS, BUILD...): it only defines names at import."""
    module = ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102  (our own rendered script)
    return module


# --- the shared virtualenv --------------------------------------------------------------------------------------

def _machine_mounts() -> None:
    for path in MACHINE_DIRS:  # a bind mount needs its mount point: empty directories, left in place
        Path(path).mkdir(parents=True, exist_ok=True)


def system_python() -> str:
    """The system's python3, as cloud-init's ``python3 -m venv`` uses on a machine (its prefix is readable by
    the service user, unlike a Python under /root); else the one running this."""
    system = Path("/usr/bin/python3")
    if system.is_file():
        done = _run([str(system), "-c", "import sys, venv, ensurepip; print(sys.version_info[:2])"], check=False)
        if done.returncode == 0 and done.stdout.strip() == str(tuple(sys.version_info[:2])):
            return str(system)
    return str(getattr(sys, "_base_executable", sys.executable))


def shared_venv(build: Any, cache_dir: Path, say: Callable[[str], None] = print) -> Path:
    """One virtualenv for every rehearsed machine of every cloud, created at the path the units run it from
    (``/opt/gridctl/venv``, inside a mount namespace) and kept in ``cache_dir`` under the constraints' digest:
    the wheel and the constraints are installed once, with bootstrap.py's own pip command (every cloud's storage
    extra at once), and torch from pip's configured find-links instead of the CPU index, which is not
    reachable here. A later build with the same constraints only replaces the wheel (``--no-deps``)."""
    from providers.build import MACHINE_EXTRAS

    venv = cache_dir / f"venv-{build.constraints_sha256[:16]}"
    marker = venv / ".gridctl-wheel-sha256"
    wheel = Path(build.wheel_path).resolve()
    requirement = f"gridctl[{','.join(MACHINE_EXTRAS)}] @ file://{wheel}"
    complete = marker.is_file()
    if complete and marker.read_text().strip() == build.wheel_sha256:
        return venv
    started = time.monotonic()
    pip = [f"{VENV_PATH}/bin/pip", "install", "--quiet", "--no-input", "--constraint",
           str(Path(build.constraints_path).resolve())]
    if complete:
        say("replacing the gridctl wheel in the shared virtualenv (same constraints)...")
        commands = shlex.join([*pip, "--no-deps", "--force-reinstall", requirement])
    else:
        shutil.rmtree(venv, ignore_errors=True)
        venv.mkdir(parents=True)
        say(f"installing the operator's build into the shared virtualenv {venv} (once)...")
        commands = (f"{shlex.quote(system_python())} -m venv {VENV_PATH}; "
                    + shlex.join([*pip, requirement, "ray[default]"]))
    (cache_dir / "mount" / "venv").mkdir(parents=True, exist_ok=True)
    _machine_mounts()
    script = (f"set -e; mount --bind {shlex.quote(str(cache_dir / 'mount'))} /opt/gridctl; "
              f"mount --bind {shlex.quote(str(venv))} {VENV_PATH}; {commands}")
    _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], timeout=1500)
    marker.write_text(build.wheel_sha256 + "\n")
    say(f"shared virtualenv ready in {time.monotonic() - started:.0f} s")
    return venv


# --- namespaces ---------------------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str) -> bool:
    """A ``gridrh-<pid>-...`` name whose rehearsal process is gone."""
    parts = name.split("-")
    return len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1]))


def namespaces() -> list[str]:
    done = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.startswith(PREFIX)]


def _kill_namespace_processes(names: list[str]) -> None:
    def pids() -> set[int]:
        found: set[int] = set()
        for name in names:
            done = _run(["ip", "netns", "pids", name], check=False)
            found |= {int(p) for p in done.stdout.split() if p.isdigit()}
        return found

    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = pids()
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = pids()
        if not alive:
            return


NETNS_ETC = Path("/etc/netns")  # ip netns exec bind-mounts /etc/netns/<name>/<file> over /etc/<file>


def remove_namespaces(names: list[str]) -> None:
    _kill_namespace_processes(names)
    for name in names:
        _run(["ip", "netns", "delete", name], check=False)
        if name.startswith(PREFIX):
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def remove_user(name: str) -> None:
    if not name.startswith(PREFIX):
        raise RehearsalError(f"refusing to remove {name!r}: not a rehearsal's user")
    _run(["userdel", name], check=False)


def clean_leftovers() -> list[str]:
    """Namespaces and users of rehearsals whose process is gone (this prefix only)."""
    removed = [name for name in namespaces() if _stale(name)]
    remove_namespaces(removed)
    if NETNS_ETC.is_dir():  # a namespace's /etc files whose namespace is already gone
        for path in NETNS_ETC.iterdir():
            if path.name.startswith(PREFIX) and _stale(path.name) and path.name not in removed:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(PREFIX) and _stale(entry.pw_name):
            remove_user(entry.pw_name)
            removed.append(entry.pw_name)
    return removed


@dataclass
class Network:
    """The rehearsal's namespaces: a bridge in ``lan``, and one namespace per host plugged into it."""

    tag: str  # gridrh-<pid>-<n>
    hosts: dict[str, str] = field(default_factory=dict)  # role -> namespace

    @property
    def lan(self) -> str:
        return f"{self.tag}-lan"

    def create(self) -> None:
        _run(["ip", "netns", "add", self.lan])
        self.hosts["lan"] = self.lan
        _run(["ip", "-n", self.lan, "link", "set", "lo", "up"])
        _run(["ip", "-n", self.lan, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", self.lan, "link", "set", "br0", "up"])

    def add_host(self, role: str, addresses: list[str], routes: list[str] = (),  # type: ignore[assignment]
                 names: dict[str, str] | None = None) -> str:
        """A namespace for ``role`` with ``eth0`` on the bridge; ``addresses`` as ``a.b.c.d/len``; ``routes``
        are on-link destinations (the public address, the metadata service); ``names`` (host name -> address)
        are added to the ``/etc/hosts`` its processes see (``/etc/netns/<namespace>/hosts``: a copy of this
        machine's, so its own name still resolves as it does for the other namespaces; removed with it)."""
        name = f"{self.tag}-{role}"
        _run(["ip", "netns", "add", name])
        self.hosts[role] = name
        if names:
            etc = NETNS_ETC / name
            etc.mkdir(parents=True, exist_ok=True)
            system = Path("/etc/hosts")
            lines = system.read_text().splitlines() if system.is_file() else ["127.0.0.1 localhost"]
            lines += [f"{address} {host} {host.split('.')[0]}" for host, address in names.items()]
            (etc / "hosts").write_text("\n".join(lines) + "\n")
            (etc / "hosts").chmod(0o644)
        port = f"p-{role}"[:15]
        _run(["ip", "-n", self.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name])
        _run(["ip", "-n", self.lan, "link", "set", port, "master", "br0", "up"])
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        for address in addresses:
            _run(["ip", "-n", name, "addr", "add", address, "dev", "eth0"])
        _run(["ip", "-n", name, "link", "set", "eth0", "up"])
        for route in routes:  # "a.b.c.d/32" or "a.b.c.d/32 src e.f.g.h" (leave from a public address)
            _run(["ip", "-n", name, "route", "add", *route.split(), "dev", "eth0"])
        return name

    def destroy(self) -> None:
        remove_namespaces(list(self.hosts.values()))
        self.hosts.clear()


# --- machines -------------------------------------------------------------------------------------------------

@dataclass
class Process:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    restarts: int = 0
    exited_at: float | None = None  # when it was seen to exit, waiting out RestartSec=


@dataclass
class Machine:
    role: str  # node, worker1, worker2
    netns: str
    root: Path
    user_data: str
    venv: Path
    service_user: str
    extra_env: dict[str, str]
    python: str
    say: Callable[[str], None]
    processes: list[Process] = field(default_factory=list)

    @property
    def files(self) -> dict[str, dict[str, str]]:
        return written_files(self.user_data)

    def host_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def prepare(self) -> None:
        """The machine's disk as cloud-init leaves it before ``runcmd``: its directories, the service user's
        home (cloud-init's ``users`` creates it), and ``write_files`` with their modes."""
        for path in (*MACHINE_DIRS, VENV_PATH, "/var/log", "/etc/systemd/system"):
            self.host_path(path).mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(self.service_user)
        os.chown(self.host_path("/var/lib/gridctl"), user.pw_uid, user.pw_gid)
        caddy = pwd.getpwnam("caddy")
        os.chown(self.host_path("/var/lib/caddy"), caddy.pw_uid, caddy.pw_gid)
        for path, entry in self.files.items():
            target = self.host_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(entry["content"])
            target.chmod(int(str(entry.get("permissions", "0644")), 8))

    def _mount_script(self, unit: Unit | None) -> str:
        lines = ["set -e"]
        for path in MACHINE_DIRS:
            lines.append(f"mount --bind {shlex.quote(str(self.host_path(path)))} {path}")
        lines.append(f"mount --bind {shlex.quote(str(self.venv))} {VENV_PATH}")
        if unit is not None and unit.private_tmp:
            lines += ["mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp",
                      "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp"]
        if unit is not None and unit.protect_system in ("yes", "full", "strict"):
            writable = tuple(unit.read_write_paths)
            if unit.protect_system == "strict":  # every mount read-only but the writable paths (already mounts)
                for path in ("/", *MACHINE_DIRS, VENV_PATH):
                    if not any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable):
                        lines.append(f"mount -o remount,bind,ro {path}")
            else:
                for path in ("/usr", "/boot", "/efi", *(("/etc",) if unit.protect_system == "full" else ())):
                    lines.append(f"if [ -d {path} ]; then mount --rbind {path} {path}; "
                                 f"mount -o remount,bind,ro {path}; fi")
        lines.append("cd /")
        lines.append('exec "$@"')
        return "; ".join(lines)

    def command(self, argv: list[str], unit: Unit | None = None) -> list[str]:
        """``argv`` run on this machine: in its network namespace, its directories mounted, and for a unit
        as its user with its sandboxing (root for cloud-init's ``runcmd``)."""
        wrapper = ["ip", "netns", "exec", self.netns, "sh", "-c", self._mount_script(unit), self.role]
        if unit is not None and unit.user != "root":
            group = unit.group or unit.user
            setpriv = ["setpriv", f"--reuid={unit.user}", f"--regid={group}", "--init-groups"]
            if unit.no_new_privileges:
                setpriv.append("--no-new-privs")
            if unit.ambient_capabilities:
                caps = ",".join(f"+{cap}" for cap in unit.ambient_capabilities)
                setpriv += [f"--inh-caps={caps}", f"--ambient-caps={caps}"]
            wrapper += [*setpriv, "--"]
        return wrapper + argv

    def _user(self, name: str) -> str:
        return self.service_user if name == SERVICE_USER else name

    def unit(self, name: str) -> Unit:
        rendered = self.files.get(f"/etc/systemd/system/{name}")
        system = SYSTEM_UNITS / name
        text = rendered["content"] if rendered else system.read_text()
        dropins = tuple(entry["content"] for path, entry in sorted(self.files.items())
                        if path.startswith(f"/etc/systemd/system/{name}.d/") and path.endswith(".conf"))
        unit = parse_unit(name, text, dropins)
        unit.user = self._user(unit.user)
        unit.group = self._user(unit.group) if unit.group else None
        return unit

    def unit_environment(self, unit: Unit) -> dict[str, str]:
        """What systemd gives the unit's process: its user's basics, Environment=, then EnvironmentFile=."""
        env = {"PATH": UNIT_PATH, "LANG": "C.UTF-8"}
        if unit.user != "root" or unit.group:
            entry = pwd.getpwnam(unit.user)
            env.update(HOME=entry.pw_dir, USER=unit.user, LOGNAME=unit.user, SHELL=entry.pw_shell)
        env.update(unit.environment)
        for path in unit.environment_files:
            optional = path.startswith("-")
            file = self.host_path(path.lstrip("-"))
            if not file.is_file():
                if optional:
                    continue
                raise RehearsalError(f"{self.role}: {unit.name}'s EnvironmentFile={path} does not exist")
            env.update(read_environment_file(file.read_text()))
        return {**env, **self.extra_env}

    def _spawn(self, unit: Unit) -> Process:
        log = self.host_path(f"/var/log/{unit.name}.log")
        with log.open("ab") as out:
            popen = subprocess.Popen(self.command(unit.exec_start, unit), env=self.unit_environment(unit),
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return Process(unit.name, popen, log)

    def start_unit(self, name: str) -> None:
        unit = self.unit(name)
        self.processes.append(self._spawn(unit))
        self.say(f"{self.role}: started {name} ({shlex.join(unit.exec_start)[:90]}...)")

    def run_as_root(self, argv: list[str], label: str, timeout: float = 300) -> None:
        env = {"PATH": UNIT_PATH, "LANG": "C.UTF-8", "HOME": "/root",
               "GRIDCTL_SERVICE_USER": self.service_user, **self.extra_env}
        done = _run(self.command(argv), env=env, timeout=timeout, check=False)
        log = self.host_path("/var/log/cloud-init-output.log")
        with log.open("a") as out:
            out.write(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise RehearsalError(f"{self.role}: runcmd {label} exited {done.returncode}:\n"
                                 f"{(done.stdout + done.stderr)[-3000:]}")

    def install(self) -> None:
        """``bootstrap.py install`` without making the virtualenv (it is the shared one): the wheel and the
        constraints are fetched with the machine's identity and kept only if their sha256 is the deployed one,
        then the installed version is checked, as the script does."""
        code = ("import importlib.util, os, subprocess, sys\n"
                "spec = importlib.util.spec_from_file_location('bootstrap', '/opt/gridctl/bootstrap.py')\n"
                "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
                "os.makedirs(m.DIST_DIR, mode=0o755, exist_ok=True)\n"
                "m.fetch_verified(m.BUILD['wheel_key'], m.BUILD['wheel_sha256'],"
                " os.path.join(m.DIST_DIR, m.BUILD['wheel_name']))\n"
                "m.fetch_verified(m.BUILD['constraints_key'], m.BUILD['constraints_sha256'],"
                " os.path.join(m.DIST_DIR, 'constraints.txt'))\n"
                "v = subprocess.run([m.VENV + '/bin/python', '-c', 'import importlib.metadata as i;"
                " print(i.version(\"gridctl\"))'], check=True, capture_output=True, text=True).stdout.strip()\n"
                "sys.exit(0 if v == m.BUILD['version'] else f'installed gridctl {v}, not {m.BUILD[\"version\"]}')\n")
        self.run_as_root([self.python, "-c", code], "bootstrap.py install")

    def boot(self) -> None:
        """cloud-init's ``runcmd``, in order."""
        for argv in yaml.safe_load(self.user_data).get("runcmd", []):
            argv = [str(arg) for arg in argv]
            label = shlex.join(argv)
            if argv[:2] == ["python3", "/opt/gridctl/bootstrap.py"] and argv[2] == "install":
                self.install()
            elif argv[0] == "python3":
                self.run_as_root([self.python, *argv[1:]], label)
            elif argv[0] == "systemctl":
                verb, names = argv[1], [a for a in argv[2:] if not a.startswith("-")]
                if verb in ("enable", "start", "restart"):
                    for name in names:
                        self.start_unit(name if "." in name else f"{name}.service")
                elif verb != "daemon-reload":
                    raise RehearsalError(f"{self.role}: runcmd {label}: not rehearsed")
            else:
                argv = [self._user(arg) if arg == SERVICE_USER else arg for arg in argv]
                self.run_as_root(argv, label)

    def check_running(self) -> None:
        """Raise if a unit has exited and its ``Restart=`` does not start it again (or it has been restarted
        :data:`MAX_RESTARTS` times); start it again once its ``RestartSec=`` has passed."""
        for index, process in enumerate(self.processes):
            code = process.popen.poll()
            if code is None:
                continue
            unit = self.unit(process.label)
            if not unit.restarts_after(code) or process.restarts >= MAX_RESTARTS:
                after = f" (restarted {process.restarts} times)" if process.restarts else ""
                raise RehearsalError(f"{self.role}: {process.label} exited {code}{after}:\n"
                                     f"{process.log.read_text(errors='replace')[-3000:]}")
            now = time.monotonic()
            if process.exited_at is None:
                process.exited_at = now
                self.say(f"{self.role}: {process.label} exited {code}; Restart={unit.restart} starts it again in "
                         f"{unit.restart_sec:g} s")
            if now - process.exited_at >= unit.restart_sec:
                restarted = self._spawn(unit)
                restarted.restarts = process.restarts + 1
                self.processes[index] = restarted

    def logs(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.host_path("/var/log").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {self.role}: {log.name}\n" + "\n".join(tail))
        return "\n".join(out)


# --- the cloud -------------------------------------------------------------------------------------------------

class CloudSide(abc.ABC):
    """What plays one cloud's APIs in a rehearsal. :meth:`start` runs in the rehearsal's process and starts the
    emulators in the ``cloud`` namespace; the class methods :meth:`seed`, :meth:`get_object` and
    :meth:`list_objects` run as the operator, in the operator's namespace (``OPERATOR_SCRIPT``, ``SETUP_SCRIPT``),
    with :meth:`operator_environment`. ``task`` carries the cloud, region, project, bucket, objects and secrets."""

    cloud: ClassVar[str]
    played_by: ClassVar[str]  # said while starting
    modules: ClassVar[dict[str, str]]  # what the emulators import -> how to install it (host_problems)
    tools: ClassVar[dict[str, str]] = {}  # the commands they need -> how to install them

    def __init__(self, work_dir: Path, settings: Any) -> None:
        self.work_dir = work_dir
        self.settings = settings  # providers.cloud.CloudSettings, as rendered
        self.project = str(settings.project)
        self.processes: list[subprocess.Popen[bytes]] = []

    def prepare(self, cache_dir: Path) -> None:  # noqa: B027 (a hook: most clouds need nothing before they start)
        """What the emulators need before they start (kept in ``cache_dir`` between rehearsals)."""

    @abc.abstractmethod
    def commands(self) -> list[list[str]]:
        """The emulators' command lines, each run in the ``cloud`` namespace."""

    def start(self, netns: str) -> None:
        with (self.work_dir / "cloud.log").open("ab") as log:
            for argv in self.commands():
                self.processes.append(subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=log,
                                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                       cwd=self.work_dir))

    def stop(self) -> None:
        """Wait for the emulators (the namespace's teardown has ended them)."""
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def machine_environment(self) -> dict[str, str]:
        """What the rehearsal adds to every machine's units and ``runcmd``: the emulators' endpoints."""
        return {}

    def machine_names(self) -> dict[str, str]:
        """Host names each machine resolves through its ``/etc/hosts`` (name -> address)."""
        return {}

    def machine_files(self) -> dict[str, bytes]:
        """Files the rehearsal adds to each machine's disk (path -> content)."""
        return {}

    def operator_names(self) -> dict[str, str]:
        return {}

    def operator_environment(self) -> dict[str, str]:
        return {}

    def task(self) -> dict[str, Any]:
        """What the operator's side needs beyond the deployment's cloud, region, project and bucket."""
        return {}

    @classmethod
    @abc.abstractmethod
    def seed(cls, task: dict[str, Any]) -> None:
        """As the operator's ``pulumi up`` would: the bucket with the build's objects, and the secrets."""

    @classmethod
    @abc.abstractmethod
    def get_object(cls, task: dict[str, Any], key: str) -> bytes | None:
        """The bucket's object ``key`` as the operator reads it (``None`` while there is none)."""

    @classmethod
    @abc.abstractmethod
    def list_objects(cls, task: dict[str, Any]) -> list[str]:
        """The keys in the bucket, as the operator lists them."""


def _wait_until(ready: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            ready()
            return
        except Exception as exc:  # noqa: BLE001  (not up yet: any error until the deadline)
            if time.monotonic() > deadline:
                raise RehearsalError(f"{what} did not come up: {exc}") from None
            time.sleep(0.5)


class AwsSide(CloudSide):
    """moto's server on port 80: S3, Secrets Manager, and the instance metadata service (the machines'
    credentials) on ``169.254.169.254``. The machines and the operator reach S3 and Secrets Manager through
    ``AWS_ENDPOINT_URL``."""

    cloud = "aws"
    played_by = "moto's server"
    modules: ClassVar[dict[str, str]] = {"moto": "pip install 'moto[server]'"}

    def commands(self) -> list[list[str]]:
        return [[sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", "80"]]  # noqa: S104 (its namespace)

    def machine_environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": f"http://{CLOUD_ADDRESS}"}

    def operator_environment(self) -> dict[str, str]:
        return {**self.machine_environment(), "AWS_ACCESS_KEY_ID": "rehearsal",
                "AWS_SECRET_ACCESS_KEY": "rehearsal",  # noqa: S106 (moto takes any)
                "AWS_DEFAULT_REGION": REGIONS["aws"], "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}

    @staticmethod
    def _client(service: str, task: dict[str, Any]) -> Any:
        import boto3

        return boto3.client(service, region_name=task["region"])

    @classmethod
    def seed(cls, task: dict[str, Any]) -> None:
        s3 = cls._client("s3", task)
        _wait_until(s3.list_buckets, "moto's server")
        s3.create_bucket(Bucket=task["bucket"], CreateBucketConfiguration={"LocationConstraint": task["region"]})
        for key, path in task["objects"].items():
            s3.put_object(Bucket=task["bucket"], Key=key, Body=Path(path).read_bytes())
        secrets_manager = cls._client("secretsmanager", task)
        for name, value in task["secrets"].items():
            secrets_manager.create_secret(Name=name, SecretString=value)

    @classmethod
    def get_object(cls, task: dict[str, Any], key: str) -> bytes | None:
        s3 = cls._client("s3", task)
        try:
            return bytes(s3.get_object(Bucket=task["bucket"], Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    @classmethod
    def list_objects(cls, task: dict[str, Any]) -> list[str]:
        pages = cls._client("s3", task).get_paginator("list_objects_v2").paginate(Bucket=task["bucket"])
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _http(method: str, url: str, *, body: bytes | None = None, content_type: str = "application/json",
          token: bool = True) -> tuple[int, bytes]:
    """A plain HTTP call to an emulator (the operator's side of GCP): status and body, errors included."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": content_type}
    if token:
        from providers.cloud_fakes import TOKEN

        headers["Authorization"] = f"Bearer {TOKEN}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 (emulator)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class GcpSide(CloudSide):
    """PyPI's gcp-storage-emulator (with GCS's ``objects.move``, :func:`providers.cloud_fakes.add_object_move`)
    for Cloud Storage on port 9023, and :class:`providers.cloud_fakes.FakeCloud` on port 80 for the metadata
    server (on ``169.254.169.254``, which each machine's ``/etc/hosts`` calls ``metadata.google.internal``) and
    Secret Manager. gcsfs finds the emulator through ``STORAGE_EMULATOR_HOST``; its experimental zonal and
    hierarchical bucket support is turned off (``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``): it asks the Storage
    Control gRPC API for each bucket's layout, which the emulator does not speak (each call would wait out a
    60 s retry)."""

    cloud = "gcp"
    played_by = "gcp-storage-emulator, and providers/cloud_fakes.py for the metadata server and Secret Manager"
    modules: ClassVar[dict[str, str]] = {"gcp_storage_emulator": "pip install gcp-storage-emulator"}
    STORAGE = f"http://{CLOUD_ADDRESS}:9023"
    SECRETS = f"http://{CLOUD_ADDRESS}"

    def commands(self) -> list[list[str]]:
        fakes = [sys.executable, "-m", "providers.cloud_fakes"]
        return [[*fakes, "fake", "--host", "0.0.0.0", "--port", "80", "--project", self.project],  # noqa: S104
                [*fakes, "gcs", "--host", "0.0.0.0", "--port", "9023"]]  # noqa: S104 (its namespace)

    def machine_environment(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.STORAGE, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
                "GRIDCTL_GCP_STORAGE_URL": self.STORAGE, "GRIDCTL_GCP_SECRETS_URL": self.SECRETS}

    def machine_names(self) -> dict[str, str]:
        return {"metadata.google.internal": METADATA_ADDRESS}

    @staticmethod
    def _object_url(task: dict[str, Any], key: str) -> str:
        from urllib.parse import quote

        return f"{GcpSide.STORAGE}/storage/v1/b/{task['bucket']}/o/{quote(key, safe='')}"

    @classmethod
    def seed(cls, task: dict[str, Any]) -> None:
        from urllib.parse import quote

        def up(url: str) -> None:
            status, _ = _http("GET", url, token=False)
            if status != 200:
                raise RehearsalError(f"{url} answered {status}")

        _wait_until(lambda: up(cls.STORAGE + "/"), "gcp-storage-emulator")
        _wait_until(lambda: up(cls.SECRETS + "/"), "the fake metadata server and Secret Manager")
        bucket = json.dumps({"name": task["bucket"], "location": task["region"]}).encode()
        calls = [("POST", f"{cls.STORAGE}/storage/v1/b?project={task['project']}", bucket, "application/json")]
        for key, path in task["objects"].items():
            calls.append(("POST", f"{cls.STORAGE}/upload/storage/v1/b/{task['bucket']}/o?uploadType=media"
                                  f"&name={quote(key, safe='')}", Path(path).read_bytes(), "application/octet-stream"))
        secrets = f"{cls.SECRETS}/v1/projects/{task['project']}/secrets"
        for name, value in task["secrets"].items():
            data = base64.b64encode(value.encode()).decode()
            calls += [("POST", f"{secrets}?secretId={quote(name, safe='')}",
                       b'{"replication": {"automatic": {}}}', "application/json"),
                      ("POST", f"{secrets}/{quote(name, safe='')}:addVersion",
                       json.dumps({"payload": {"data": data}}).encode(), "application/json")]
        for method, url, body, content_type in calls:
            status, answer = _http(method, url, body=body, content_type=content_type)
            if status != 200:
                raise RehearsalError(f"{method} {url.split('?')[0]} answered {status}: {answer[:300]!r}")

    @classmethod
    def get_object(cls, task: dict[str, Any], key: str) -> bytes | None:
        status, body = _http("GET", cls._object_url(task, key) + "?alt=media")
        if status == 404:
            return None
        if status != 200:
            raise RehearsalError(f"reading gs://{task['bucket']}/{key} answered {status}")
        return body

    @classmethod
    def list_objects(cls, task: dict[str, Any]) -> list[str]:
        from urllib.parse import quote

        keys: list[str] = []
        token = ""
        while True:
            url = f"{cls.STORAGE}/storage/v1/b/{task['bucket']}/o" + (f"?pageToken={quote(token)}" if token else "")
            status, body = _http("GET", url)
            if status != 200:
                raise RehearsalError(f"listing gs://{task['bucket']} answered {status}")
            page = json.loads(body)
            keys += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken", "")
            if not token:
                return keys


AZURITE_VERSION = "3.37.0"


class AzureSide(CloudSide):
    """Azurite (the npm registry's, installed at first use into the rehearsal's cache with ``npm install``) for Blob
    storage on port 443 of ``10.42.0.2``, over TLS from a throwaway CA, with OAuth at its "basic" level (each bearer
    token's issuer, audience and lifetime are checked, not its signature), and
    :class:`providers.cloud_fakes.FakeCloud` on port 80 for IMDS (on ``169.254.169.254``: managed-identity tokens
    shaped as Entra ID's) and Key Vault. The machines reach the storage account by its real name,
    ``<account>.blob.core.windows.net`` (their ``/etc/hosts``), as adlfs and bootstrap.py do by default, and trust
    the throwaway CA through ``SSL_CERT_FILE`` (``/etc/gridctl/rehearsal-ca.pem`` on each machine: the system's
    CAs and that one). Key Vault is found through bootstrap.py's ``GRIDCTL_AZURE_VAULT_URL``."""

    cloud = "azure"
    played_by = "Azurite, and providers/cloud_fakes.py for IMDS and Key Vault"
    modules: ClassVar[dict[str, str]] = {"cryptography": "pip install cryptography"}
    tools: ClassVar[dict[str, str]] = {"node": "apt-get install nodejs", "npm": "apt-get install npm"}
    VAULT = f"http://{CLOUD_ADDRESS}/vault"
    BUNDLE = "/etc/gridctl/rehearsal-ca.pem"  # on each machine
    BLOB_VERSION = "2021-08-06"

    def __init__(self, work_dir: Path, settings: Any) -> None:
        from providers.azure import config

        super().__init__(work_dir, settings)
        self.account = config.storage_account(settings)
        self.host = f"{self.account}.blob.core.windows.net"
        self.account_key = base64.b64encode(secrets_module.token_bytes(64)).decode()
        self.tls = work_dir / "azure-tls"
        self.azurite = Path()

    def prepare(self, cache_dir: Path) -> None:
        from providers.cloud_fakes import make_tls

        prefix = cache_dir / f"azurite-{AZURITE_VERSION}"
        self.azurite = prefix / "node_modules" / ".bin" / "azurite-blob"
        if not self.azurite.exists():
            prefix.mkdir(parents=True, exist_ok=True)
            _run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-update-notifier",
                  f"azurite@{AZURITE_VERSION}"], timeout=900)
        ca, _, _ = make_tls(self.tls, [self.host])
        system = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's and Ubuntu's bundle
        if not system.is_file():
            system = Path(__import__("ssl").get_default_verify_paths().openssl_cafile)
        (self.tls / "bundle.pem").write_bytes((system.read_bytes() if system.is_file() else b"") + ca.read_bytes())

    def commands(self) -> list[list[str]]:
        fake = [sys.executable, "-m", "providers.cloud_fakes", "fake", "--host", "0.0.0.0", "--port", "80",  # noqa: S104
                "--project", self.project]
        azurite = ["env", f"AZURITE_ACCOUNTS={self.account}:{self.account_key}", str(self.azurite),
                   "--blobHost", "0.0.0.0", "--blobPort", "443", "--cert", str(self.tls / "server.pem"),  # noqa: S104
                   "--key", str(self.tls / "server-key.pem"), "--oauth", "basic", "--inMemoryPersistence",
                   "--skipApiVersionCheck", "--loose", "--disableTelemetry"]
        return [fake, azurite]

    def machine_environment(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": self.BUNDLE, "REQUESTS_CA_BUNDLE": self.BUNDLE, "GRIDCTL_AZURE_VAULT_URL": self.VAULT}

    def machine_names(self) -> dict[str, str]:
        return {self.host: CLOUD_ADDRESS}

    def operator_names(self) -> dict[str, str]:
        return {self.host: CLOUD_ADDRESS}

    def machine_files(self) -> dict[str, bytes]:
        return {self.BUNDLE: (self.tls / "bundle.pem").read_bytes()}

    def task(self) -> dict[str, Any]:
        return {"blob_host": self.host, "blob_ca": str(self.tls / "ca.pem")}

    @classmethod
    def _blob(cls, task: dict[str, Any], method: str, path: str, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        import ssl
        import urllib.error
        import urllib.request

        from providers.cloud_fakes import azure_token

        context = ssl.create_default_context(cafile=task["blob_ca"])
        headers = {"Authorization": f"Bearer {azure_token('https://storage.azure.com/')}",
                   "x-ms-version": cls.BLOB_VERSION, **(headers or {})}
        request = urllib.request.Request(f"https://{task['blob_host']}/{path}", data=body, method=method,  # noqa: S310
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    @classmethod
    def seed(cls, task: dict[str, Any]) -> None:
        from urllib.parse import quote

        def expect(answer: tuple[int, bytes], *statuses: int) -> None:
            if answer[0] not in statuses:
                raise RehearsalError(f"the emulated Azure answered {answer[0]}: {answer[1][:300]!r}")

        _wait_until(lambda: expect(cls._blob(task, "GET", "?comp=list"), 200), "Azurite")
        _wait_until(lambda: expect(_http("GET", f"http://{CLOUD_ADDRESS}/", token=False), 200), "the fake IMDS")
        expect(cls._blob(task, "PUT", f"{task['bucket']}?restype=container", b""), 201)
        for key, path in task["objects"].items():
            expect(cls._blob(task, "PUT", f"{task['bucket']}/{quote(key)}", Path(path).read_bytes(),
                             {"x-ms-blob-type": "BlockBlob"}), 201)
        for name, value in task["secrets"].items():
            expect(_http("PUT", f"{cls.VAULT}/secrets/{quote(name, safe='')}?api-version=7.4",
                         body=json.dumps({"value": value}).encode()), 200)

    @classmethod
    def get_object(cls, task: dict[str, Any], key: str) -> bytes | None:
        from urllib.parse import quote

        status, body = cls._blob(task, "GET", f"{task['bucket']}/{quote(key)}")
        if status == 404:
            return None
        if status != 200:
            raise RehearsalError(f"reading {key} from the container answered {status}")
        return body

    @classmethod
    def list_objects(cls, task: dict[str, Any]) -> list[str]:
        from urllib.parse import quote
        from xml.etree import ElementTree

        keys: list[str] = []
        marker = ""
        while True:
            path = f"{task['bucket']}?restype=container&comp=list" + (f"&marker={quote(marker)}" if marker else "")
            status, body = cls._blob(task, "GET", path)
            if status != 200:
                raise RehearsalError(f"listing the container answered {status}")
            root = ElementTree.fromstring(body)  # noqa: S314 (the emulator's answer)
            keys += [name.text or "" for name in root.iter("Name") if name.text]
            marker = root.findtext("NextMarker") or ""
            if not marker:
                return keys


CLOUD_SIDES: dict[str, type[CloudSide]] = {"aws": AwsSide, "gcp": GcpSide, "azure": AzureSide}

OPERATOR_SCRIPT = """
import json, sys
task = json.loads(sys.stdin.read())
from providers.rehearsal import CLOUD_SIDES
CLOUD_SIDES[task["cloud"]].seed(task)
print("seeded")
"""

SETUP_SCRIPT = """
import json, sys, time
task = json.loads(sys.stdin.read())
from pathlib import Path
from providers.cloud_provider import pinned_context, set_up_owner, wait_until_healthy
from providers.rehearsal import CLOUD_SIDES
side = CLOUD_SIDES[task["cloud"]]
deadline = time.monotonic() + task["timeout"]
while (pem := side.get_object(task, task["ca_object"])) is None:
    if time.monotonic() > deadline: sys.exit("the Node did not publish its TLS root certificate")
    time.sleep(1)
Path(task["ca_file"]).write_bytes(pem)
verify = pinned_context(Path(task["ca_file"]))
wait_until_healthy(task["url"], verify, timeout=task["timeout"])
token = set_up_owner(task["url"], verify=verify, setup_token=task["setup_token"], email=task["email"],
                     password=task["password"])
print("TOKEN=" + token)
"""

LIST_SCRIPT = """
import json, sys
task = json.loads(sys.stdin.read())
from providers.rehearsal import CLOUD_SIDES
print("KEYS=" + json.dumps(CLOUD_SIDES[task["cloud"]].list_objects(task)))
"""

JOIN_SCRIPT = """
import json, sys
from pathlib import Path
task = json.loads(sys.stdin.read())
from providers.cloud_provider import associate_with_network, pinned_context
done = associate_with_network(
    node_url=task["node_url"], node_verify=pinned_context(Path(task["node_ca_file"])), node_token=task["node_token"],
    network_url=task["network_url"], network_verify=pinned_context(Path(task["network_ca_file"])),
    network_token=task["network_token"], network_ca_pem=Path(task["network_ca_file"]).read_text(),
    node_ca_pem=Path(task["node_ca_file"]).read_text())
print("JOINED=" + json.dumps({"node_id": done.node_id, "network_id": done.network_id, "already": done.already}))
"""

ASSOCIATIONS_SCRIPT = """
import json, sys
import httpx
from pathlib import Path
task = json.loads(sys.stdin.read())
from providers.cloud_provider import pinned_context
def listed(url, path, token, ca_file):
    answer = httpx.get(url + "/api/v1" + path, headers={"Authorization": "Bearer " + token},
                       verify=pinned_context(Path(ca_file)), timeout=60)
    answer.raise_for_status()
    return answer.json()
print("ASSOCIATIONS=" + json.dumps({
    "node": listed(task["node_url"], "/network/associations", task["node_token"], task["node_ca_file"]),
    "network": listed(task["network_url"], "/associations", task["network_token"], task["network_ca_file"])}))
"""

WORKERS_SCRIPT = """
import json, sys, time
task = json.loads(sys.stdin.read())
from gridctl.sdk.node import Node
node = Node(task["url"], token=task["token"], ca_file=task["ca_file"])
deadline = time.monotonic() + task["timeout"]
while True:
    workers = [w for w in node.jobs.workers()["workers"] if w.get("alive")]
    if len(workers) >= task["count"] or time.monotonic() > deadline:
        break
    time.sleep(2)
print("WORKERS=" + json.dumps(workers))
"""


@dataclass
class Rehearsal:
    """One cloud's machines up on this machine; use as a context manager (torn down on exit)."""

    cloud: str
    work_dir: Path
    venv: Path
    build: Any
    name: str = NAME  # the deployment's name, as the program names its resources
    say: Callable[[str], None] = print
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-{next(_REHEARSALS)}")
    network: Network | None = None
    machines: list[Machine] = field(default_factory=list)
    service_user: str = ""
    rendered: Rendered | None = None
    url: str = ""
    ca_file: Path | None = None
    bucket: str = ""
    owner_token: str = ""
    owner_email: str = "owner@example.com"
    owner_password: str = field(default_factory=lambda: secrets_module.token_urlsafe(18))
    side: CloudSide | None = None  # what plays the cloud's APIs
    with_network: bool = False  # --network: the Network machine too, in a namespace of its own
    network_url: str = ""
    network_ca_file: Path | None = None
    network_owner_token: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    _steps: int = 0

    def __enter__(self) -> Rehearsal:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- running things in the namespaces --------------------------------------------------------------------

    def operator_env(self) -> dict[str, str]:
        clouds = ("AWS_", "GOOGLE_", "CLOUDSDK_", "GCE_", "STORAGE_EMULATOR_HOST", "AZURE_")  # never the real ones
        env = {k: v for k, v in os.environ.items() if not k.startswith((*clouds, "GRIDCTL_URL", "GRIDCTL_TOKEN"))}
        env.update(self.side.operator_environment() if self.side else {}, NO_PROXY="*")
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def operator(self, argv: list[str], *, input: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``argv`` run as the operator: in the operator's namespace, which reaches the Node's public address
        and the emulated cloud, with the emulator's endpoint and throwaway credentials in its environment."""
        assert self.network is not None
        return subprocess.run(["ip", "netns", "exec", self.network.hosts["operator"], *argv], input=input,
                              capture_output=True, text=True, env={**self.operator_env(), **(env or {})},
                              timeout=timeout, cwd=cwd, check=False)

    def operator_watching(self, argv: list[str], input: str, timeout: float,
                          env: dict[str, str] | None = None) -> tuple[str, str]:
        """Like :meth:`operator`, but stops as soon as a machine's unit exits (its log says why)."""
        assert self.network is not None
        self._steps += 1
        files = [self.work_dir / f"operator-{self._steps}.{kind}" for kind in ("in", "out", "err")]
        files[0].write_text(input)
        with files[0].open() as stdin, files[1].open("w") as stdout, files[2].open("w") as stderr:
            process = subprocess.Popen(["ip", "netns", "exec", self.network.hosts["operator"], *argv], stdin=stdin,
                                       stdout=stdout, stderr=stderr, env={**self.operator_env(), **(env or {})})
            deadline = time.monotonic() + timeout
            try:
                while process.poll() is None:
                    time.sleep(1)
                    self.check_running()
                    if time.monotonic() > deadline:
                        raise RehearsalError(f"`{shlex.join(argv)[:100]}` took more than {timeout:.0f} s\n"
                                             + files[2].read_text()[-2000:] + self.logs())
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        out, err = files[1].read_text(), files[2].read_text()
        if process.returncode != 0:
            raise RehearsalError(f"the operator's step exited {process.returncode}: {err[-3000:]}\n" + self.logs())
        return out, err

    # -- up and down -----------------------------------------------------------------------------------------------

    def up(self) -> None:
        require_rehearsable(self.cloud)
        started = time.monotonic()
        clean_leftovers()
        _machine_mounts()
        self.say(f"{self.cloud}: rendering the machines (the program under Pulumi's mocks)...")
        self.rendered = rendered = render(self.cloud, self.build, self.name, network=self.with_network)
        node_files = written_files(rendered.node)
        node_boot = bootstrap_module(node_files["/opt/gridctl/bootstrap.py"]["content"], "node_bootstrap")
        worker_boot = bootstrap_module(written_files(rendered.worker)["/opt/gridctl/bootstrap.py"]["content"],
                                       "worker_bootstrap")
        self.bucket = str(node_boot.BUCKET)
        public = read_environment_file(node_files["/etc/gridctl/caddy.env"]["content"])["GRID_PUBLIC_ADDRESS"]
        self.url = f"https://{public}"
        network_boot: ModuleType | None = None
        network_public = ""
        if rendered.network:
            network_files = written_files(rendered.network)
            network_boot = bootstrap_module(network_files["/opt/gridctl/bootstrap.py"]["content"],
                                            "network_bootstrap")
            network_public = read_environment_file(
                network_files["/etc/gridctl/caddy.env"]["content"])["GRID_PUBLIC_ADDRESS"]
            self.network_url = f"https://{network_public}"

        self.service_user = f"{self.tag}-{SERVICE_USER}"
        _run(["useradd", "--system", "--no-create-home", "--home-dir", "/var/lib/gridctl",
              "--shell", "/usr/sbin/nologin", "--user-group", self.service_user])

        self.side = side = CLOUD_SIDES[self.cloud](self.work_dir, rendered.settings)
        side.prepare(self.venv.parent)
        self.network = network = Network(self.tag)
        network.create()
        on_link = [f"{METADATA_ADDRESS}/32"]
        network.add_host("cloud", [f"{CLOUD_ADDRESS}/16", f"{METADATA_ADDRESS}/32"])
        publics = [f"{public}/32"] + ([f"{network_public}/32"] if network_public else [])
        network.add_host("operator", [f"{OPERATOR_ADDRESS}/16"], publics, side.operator_names())
        from providers.cloud import NETWORK_PRIVATE_IP, NODE_PRIVATE_IP

        roles = {"node": NODE_PRIVATE_IP, "worker1": WORKER_ADDRESSES[0], "worker2": WORKER_ADDRESSES[1]}
        # Each public machine holds its public address; with --network the Node and the Network machine reach
        # each other's from their own (as the cloud's address translation shows them, and as the programs'
        # rules between the two expect: tests/test_programs_network.py).
        addresses = {"node": [f"{public}/32"]}
        peer_routes: dict[str, list[str]] = {"node": [], "network": []}
        if network_public:
            roles["network"] = NETWORK_PRIVATE_IP
            addresses["network"] = [f"{network_public}/32"]
            peer_routes = {"node": [f"{network_public}/32 src {public}"],
                           "network": [f"{public}/32 src {network_public}"]}
        for role, address in roles.items():
            network.add_host(role, [f"{address}/16", *addresses.get(role, [])],
                             on_link + peer_routes.get(role, []), side.machine_names())

        self.say(f"{self.cloud}: the cloud's APIs ({side.played_by}) on {CLOUD_ADDRESS} and {METADATA_ADDRESS}")
        side.start(network.hosts["cloud"])
        secrets = {key: value for key, value in _secret_values(rendered.settings).items()}
        refs = {s["ref"]: secrets[s["key"]]
                for s in [*node_boot.SECRETS, *worker_boot.SECRETS, *(network_boot.SECRETS if network_boot else [])]}
        task = {**self.cloud_task(), "secrets": refs,
                "objects": {self.build.object_key("wheel"): self.build.wheel_path,
                            self.build.object_key("constraints"): self.build.constraints_path}}
        done = self.operator([sys.executable, "-c", OPERATOR_SCRIPT], input=json.dumps(task), timeout=120)
        if done.returncode != 0:
            raise RehearsalError(f"seeding the emulated cloud failed: {done.stderr[-2000:]}\n"
                                 + (self.work_dir / "cloud.log").read_text(errors="replace")[-2000:])
        self.timings["network and cloud"] = time.monotonic() - started

        machine_env = side.machine_environment()
        if network_public:
            # The rehearsal's public addresses are documentation ones (192.0.2.0/24), which the peer URL checks
            # refuse as not global (docs/network.md, "URLs"): the one setting the rehearsal adds for a Network.
            machine_env = {**machine_env, "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true",
                           "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"}
        user_data = {"node": rendered.node, "network": rendered.network}
        for role in roles:
            machine = Machine(role=role, netns=network.hosts[role], root=self.work_dir / role,
                              user_data=user_data.get(role, rendered.worker), venv=self.venv,
                              service_user=self.service_user, extra_env=machine_env, python=sys.executable,
                              say=self.say)
            machine.prepare()
            for path, content in side.machine_files().items():
                machine.host_path(path).write_bytes(content)
                machine.host_path(path).chmod(0o644)
            self.machines.append(machine)
        step = time.monotonic()
        self.say(f"{self.cloud}: booting the Node (runcmd)...")
        self.machines[0].boot()
        for machine in self.machines[1:]:
            self.say(f"{self.cloud}: booting {machine.role} (runcmd)...")
            machine.boot()
        self.timings["boot"] = time.monotonic() - step

        step = time.monotonic()
        self.ca_file = self.work_dir / "tls-root.crt"
        setup = {**self.cloud_task(), "ca_object": node_boot.CA_OBJECT,
                 "ca_file": str(self.ca_file), "url": self.url, "timeout": 240,
                 "setup_token": rendered.settings.secrets.setup_token, "email": self.owner_email,
                 "password": self.owner_password}
        stdout, stderr = self.operator_watching([sys.executable, "-c", SETUP_SCRIPT], json.dumps(setup), 300)
        if "TOKEN=" not in stdout:
            raise RehearsalError(f"the Owner's setup over the pinned TLS root failed: {stderr[-3000:]}\n"
                                 + self.logs())
        self.owner_token = stdout.split("TOKEN=", 1)[1].strip()
        self.timings["owner setup"] = time.monotonic() - step
        self.say(f"{self.cloud}: the Owner is set up at {self.url} over the pinned TLS root "
                 f"({time.monotonic() - started:.0f} s since start)")
        if network_boot is not None:
            step = time.monotonic()
            self.network_ca_file = self.work_dir / "network-tls-root.crt"
            setup = {**self.cloud_task(), "ca_object": network_boot.CA_OBJECT,
                     "ca_file": str(self.network_ca_file), "url": self.network_url, "timeout": 240,
                     "setup_token": rendered.settings.secrets.network_setup_token, "email": self.owner_email,
                     "password": self.owner_password}
            stdout, stderr = self.operator_watching([sys.executable, "-c", SETUP_SCRIPT], json.dumps(setup), 300)
            if "TOKEN=" not in stdout:
                raise RehearsalError(f"the Network Owner's setup over its pinned TLS root failed: "
                                     f"{stderr[-3000:]}\n" + self.logs())
            self.network_owner_token = stdout.split("TOKEN=", 1)[1].strip()
            self.timings["network owner setup"] = time.monotonic() - step
            self.say(f"{self.cloud}: the Network's Owner is set up at {self.network_url} over its own pinned root")

    def cloud_task(self) -> dict[str, Any]:
        """What the operator's side of :class:`CloudSide` is told about this deployment."""
        assert self.rendered is not None
        assert self.side is not None
        return {"cloud": self.cloud, "region": REGIONS[self.cloud], "project": self.rendered.settings.project,
                "bucket": self.bucket, **self.side.task()}

    def bucket_keys(self) -> list[str]:
        """Every key in the emulated bucket, listed as the operator."""
        done = self.operator([sys.executable, "-c", LIST_SCRIPT], input=json.dumps(self.cloud_task()), timeout=120)
        if done.returncode != 0 or "KEYS=" not in done.stdout:
            raise RehearsalError(f"listing the emulated bucket failed: {done.stderr[-2000:]}")
        return list(json.loads(done.stdout.split("KEYS=", 1)[1]))

    def _network_task(self) -> dict[str, Any]:
        if not self.network_url or self.network_ca_file is None or self.ca_file is None:
            raise RehearsalError("this rehearsal has no Network machine (--network)")
        return {"node_url": self.url, "node_token": self.owner_token, "node_ca_file": str(self.ca_file),
                "network_url": self.network_url, "network_token": self.network_owner_token,
                "network_ca_file": str(self.network_ca_file)}

    def associate(self) -> dict[str, Any]:
        """What ``gridctl deploy --network`` does last: the Node joins the Network (the operator calling the Node
        as its Owner, both roots pinned) and the Network's Owner approves it (providers/cloud_provider.py)."""
        stdout, _ = self.operator_watching([sys.executable, "-c", JOIN_SCRIPT], json.dumps(self._network_task()),
                                           180)
        return dict(json.loads(stdout.split("JOINED=", 1)[1]))

    def associations(self) -> dict[str, list[dict[str, Any]]]:
        """The associations as the Node and as the Network list them, asked as their Owners."""
        stdout, _ = self.operator_watching([sys.executable, "-c", ASSOCIATIONS_SCRIPT],
                                           json.dumps(self._network_task()), 120)
        return dict(json.loads(stdout.split("ASSOCIATIONS=", 1)[1]))

    def wait_for_workers(self, count: int = 2, timeout: float = 180) -> list[dict[str, Any]]:
        """The Workers the Node sees (``GET /workers`` as the Owner, over the pinned root), once ``count`` are."""
        assert self.ca_file is not None
        task = {"url": self.url, "token": self.owner_token, "ca_file": str(self.ca_file), "count": count,
                "timeout": timeout}
        stdout, _ = self.operator_watching([sys.executable, "-c", WORKERS_SCRIPT], json.dumps(task), timeout + 30)
        return list(json.loads(stdout.split("WORKERS=", 1)[1]))

    def check_running(self) -> None:
        for machine in self.machines:
            machine.check_running()

    def logs(self) -> str:
        return "\n".join(machine.logs() for machine in self.machines)

    def down(self) -> None:
        if self.network is not None:
            self.network.destroy()
        for machine in self.machines:
            for process in machine.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)
        if self.side is not None:
            self.side.stop()
        if self.service_user:
            remove_user(self.service_user)
            self.service_user = ""


def _secret_values(settings: Any) -> dict[str, str]:
    from providers.cloud import stored_secrets

    return stored_secrets(settings)


@contextlib.contextmanager
def rehearse(cloud: str, work_dir: Path, cache_dir: Path, say: Callable[[str], None] = print,
             name: str = NAME, *, network: bool = False) -> Iterator[Rehearsal]:
    """Build the operator's wheel, install it once in the shared virtualenv, and bring ``cloud``'s machines up
    (the Network machine too, with ``network``)."""
    from providers.build import operator_build

    require_rehearsable(cloud)
    build = operator_build(work_dir / "build")
    venv = shared_venv(build, cache_dir, say)
    with Rehearsal(cloud=cloud, work_dir=work_dir, venv=venv, build=build, name=name, say=say,
                   with_network=network) as rehearsal:
        yield rehearsal


def cache_dir() -> Path:
    """Where ``gridctl deploy <cloud> --rehearse`` keeps the shared virtualenv between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridctl" / "rehearsal"


def run_rehearsal(cloud: str, name: str = NAME, say: Callable[[str], None] = print, *,
                  network: bool = False) -> dict[str, Any]:
    """``gridctl deploy <cloud> --rehearse [--network]``: the machines up, the Owner set up over the pinned TLS
    root, both Workers joined; with ``network`` the Network machine too, its Owner set up over its own pinned root
    and the Node associated with it; then everything torn down. Returns what was seen and how long each step
    took."""
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp, \
            rehearse(cloud, Path(tmp), cache_dir(), say, name, network=network) as r:
        workers = r.wait_for_workers()
        if len(workers) < 2:
            raise RehearsalError(f"only {len(workers)} of 2 Workers joined the Node's Ray head\n" + r.logs())
        units = {m.role: [p.label for p in m.processes] for m in r.machines}
        summary: dict[str, Any] = {"cloud": cloud, "url": r.url, "owner": r.owner_email, "workers": len(workers),
                                   "units": units, "timings_s": {k: round(v, 1) for k, v in r.timings.items()}}
        if network:
            joined = r.associate()
            summary.update(network_url=r.network_url, network_association=joined)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary
