"""The provider interface, the deployment spec and record, and the registry of providers.

A provider deploys a Node (and later its Workers and a Network) to one target: this machine (``local``),
AWS, GCP or Azure. Every provider implements :class:`Provider`; the CLI only ever talks to this interface.

Each deployment has a state directory ``<deployments_dir>/<name>/`` (mode 0700) holding
``deployment.json`` (the :class:`DeploymentRecord`, the same shape for every provider) and whatever the
provider needs besides (pid files and logs for ``local``, the Pulumi backend for clouds). Deployment names
are unique on a machine, whatever their provider, and a deployment's saved CLI context has the same name.

The registry lists providers by dotted path and imports them only when asked: a provider whose SDK is not
installed (``import pulumi_aws`` fails) simply does not appear in :func:`available_providers`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from gridctl.sdk.errors import GridctlError

DEPLOYMENT_FILE = "deployment.json"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$")


class Feature(StrEnum):
    """What a deployment may ask for. A provider lists what it cannot do in ``Provider.unsupported``."""

    workers = "workers"  # Ray Workers next to the Node
    scale_workers = "scale_workers"  # change the Worker count of a running deployment
    network = "network"  # a Network service beside the Node
    managed_database = "managed_database"  # the cloud's PostgreSQL instead of SQLite on the Node's disk
    tls = "tls"  # the API served over HTTPS
    preview = "preview"  # show what deploy would change without changing it


# --- errors: GridctlError codes, so the CLI maps them to its documented exit codes ------------------------

class ProviderError(GridctlError):
    def __init__(self, message: str, *, code: str = "deploy_failed") -> None:
        super().__init__(code, message)


class DeploymentNotFound(ProviderError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no deployment named {name!r} on this machine; see 'gridctl status'", code="not_found")


class DeploymentConflict(ProviderError):
    """The request clashes with what exists: a busy port, a name taken by another provider's deployment."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="conflict")


class Unsupported(ProviderError):
    def __init__(self, provider: str, feature: Feature, reason: str) -> None:
        super().__init__(f"{provider} does not support {feature.value}: {reason}", code="unsupported")


class ProviderUnavailable(ProviderError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"provider {name!r} is not available: {reason}", code="unavailable")


# --- what a deploy is asked for, and what it leaves behind --------------------------------------------

def validate_name(name: str) -> str:
    """Deployment names become directory, context and cloud resource names: keep them portable."""
    if not NAME_PATTERN.match(name):
        raise ValueError("use 1-40 lowercase letters, digits and hyphens, starting with a letter")
    return name


@dataclass
class DeploymentSpec:
    """What the operator asked for. Fields a provider does not use are ignored; a field asking for an
    unsupported feature (``workers > 0`` where Workers are unsupported) makes ``deploy`` raise ``Unsupported``."""

    name: str
    owner_email: str = "owner@localhost"
    owner_password: str | None = None  # generated (and shown once) when not given
    port: int | None = None  # local: the API port on 127.0.0.1
    region: str | None = None
    workers: int = 0
    instance_type: str | None = None
    database: str = "sqlite"  # "sqlite" or "managed"
    network: bool = False
    allow_cidr: list[str] = field(default_factory=list)
    # Clouds only (providers/cloud_provider.py); the local provider ignores them.
    worker_instance_type: str | None = None
    ssh_cidr: list[str] = field(default_factory=list)  # empty: no SSH ingress at all
    ssh_public_key: str | None = None  # the OpenSSH public key text (never a private key)
    domain: str | None = None  # a public certificate for this name; without one the Node's own CA signs
    project: str | None = None  # GCP project
    backend_url: str | None = None  # where Pulumi keeps the stack's state; a file backend in the state dir if None
    # What encrypts the stack's secrets: a cloud KMS key (awskms://, gcpkms://, azurekeyvault://), or a
    # passphrase kept in the state dir if None (providers/stack.py).
    secrets_provider: str | None = None
    # Allow a deploy that must replace the Node's machine (its user-data changed: a new gridctl build, a domain,
    # a database...): the data on its disk (the SQLite database) is lost. Never remembered.
    replace_node: bool = False

    def __post_init__(self) -> None:
        validate_name(self.name)

    def requested_features(self) -> set[Feature]:
        wanted: set[Feature] = set()
        if self.workers:
            wanted.add(Feature.workers)
        if self.network:
            wanted.add(Feature.network)
        if self.database == "managed":
            wanted.add(Feature.managed_database)
        return wanted


@dataclass
class DeploymentRecord:
    """``deployment.json``: what this machine knows of a deployment, whatever its provider."""

    name: str
    provider: str
    url: str
    created_at: str
    owner_email: str
    settings: dict[str, Any] = field(default_factory=dict)  # provider-specific: port, region, workers...

    @staticmethod
    def path(state_dir: Path) -> Path:
        return state_dir / DEPLOYMENT_FILE

    @classmethod
    def load(cls, state_dir: Path) -> DeploymentRecord:
        return cls(**json.loads(cls.path(state_dir).read_text()))

    def save(self, state_dir: Path) -> None:
        write_state_file(self.path(state_dir), json.dumps(asdict(self), indent=2) + "\n")


@dataclass
class DeployResult:
    """What ``deploy`` did. ``owner_password`` is set only when this deploy created the Owner with a
    generated password: it is shown once and stored nowhere."""

    name: str
    provider: str
    url: str
    state: str  # "created", "running" (nothing to do) or "restarted"
    owner_email: str
    api_token: str | None = None  # a fresh named API token for the CLI context, when the Owner was created
    owner_password: str | None = None
    owner_password_generated: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    # A cloud deployment's Network (--network), when this deploy created its Owner: the same email, its own
    # password (generated unless given: shown once) and a named API token for its own context.
    network_api_token: str | None = None
    network_owner_password: str | None = None


@dataclass
class DeploymentStatus:
    name: str
    provider: str
    url: str
    running: bool  # the deployment's processes or instances are up
    healthy: bool  # the Node answered GET /api/v1/health
    version: str | None = None  # the gridctl build the deployment runs (its version and wheel sha256)
    processes: list[dict[str, Any]] = field(default_factory=list)  # local: role, pid, alive
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedChange:
    action: str  # "create", "update", "start", "keep", "delete"
    kind: str  # "process", "directory", "instance", "bucket", ...
    name: str
    detail: str = ""


# --- the interface -----------------------------------------------------------------------------------

class Provider(ABC):
    """One deployment target. Subclasses set ``name`` and ``unsupported`` and implement the methods.

    A provider is constructed with the directory holding every deployment's state directory
    (``$GRIDCTL_HOME/deployments``). Methods raise :class:`ProviderError` subclasses, never print: the CLI
    renders results and progress.
    """

    name: ClassVar[str]
    #: Features this provider cannot provide, each with the reason shown to the operator.
    unsupported: ClassVar[Mapping[Feature, str]] = {}

    def __init__(self, deployments_dir: Path) -> None:
        self.deployments_dir = deployments_dir

    def state_dir(self, name: str) -> Path:
        return self.deployments_dir / validate_name(name)

    def supports(self, feature: Feature) -> bool:
        return feature not in self.unsupported

    def require(self, *features: Feature) -> None:
        for feature in features:
            if feature in self.unsupported:
                raise Unsupported(self.name, feature, self.unsupported[feature])

    def record(self, name: str) -> DeploymentRecord:
        """This provider's record of ``name``; ``DeploymentNotFound`` if there is none (or it is another
        provider's deployment, which is a ``DeploymentConflict``)."""
        state_dir = self.state_dir(name)
        if not DeploymentRecord.path(state_dir).exists():
            raise DeploymentNotFound(name)
        record = DeploymentRecord.load(state_dir)
        if record.provider != self.name:
            raise DeploymentConflict(f"deployment {name!r} belongs to provider {record.provider!r}, not {self.name!r}")
        return record

    @abstractmethod
    def check_credentials(self) -> str | None:
        """``None`` when this provider can deploy from this machine now; otherwise the reason it cannot
        (missing credentials, missing Pulumi CLI, ...), in one line the operator can act on."""

    @abstractmethod
    def deploy(self, spec: DeploymentSpec) -> DeployResult:
        """Create the deployment, or bring an existing one back to its spec, keeping its data. Idempotent.
        On creation, sets up the Owner (with ``spec.owner_password`` or a generated one) and returns a named
        API token for the CLI context."""

    @abstractmethod
    def preview(self, spec: DeploymentSpec) -> list[PlannedChange]:
        """What ``deploy(spec)`` would change, without changing anything."""

    @abstractmethod
    def destroy(self, name: str, *, purge: bool = False) -> list[PlannedChange]:
        """Stop the deployment (processes or instances). With ``purge``, also delete its data and state
        directory. Returns what was done."""

    @abstractmethod
    def status(self, name: str) -> DeploymentStatus:
        """Whether the deployment is running and its Node healthy."""

    def outputs(self, name: str) -> dict[str, Any]:
        """Named values of the deployment: URL, addresses, bucket names..."""
        return self.status(name).outputs

    @abstractmethod
    def scale_workers(self, name: str, count: int) -> DeploymentStatus:
        """Change the number of Workers; only the Worker pool changes (``require(Feature.scale_workers)``
        first where a provider may lack it)."""


# --- helpers for providers ---------------------------------------------------------------------------

def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def generate_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


def make_private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # mkdir's mode is filtered by the umask, and ignored for an existing directory


def write_state_file(path: Path, content: str) -> None:
    """Replace ``path`` atomically with an owner-only file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def known_deployments(deployments_dir: Path) -> list[DeploymentRecord]:
    """Every deployment recorded on this machine, whatever its provider, by name."""
    if not deployments_dir.is_dir():
        return []
    records = []
    for path in sorted(deployments_dir.glob(f"*/{DEPLOYMENT_FILE}")):
        try:
            records.append(DeploymentRecord.load(path.parent))
        except (OSError, ValueError, TypeError):
            continue  # a half-written or foreign directory is not a deployment
    return records


# --- the registry ------------------------------------------------------------------------------------

_REGISTRY: dict[str, str] = {
    "local": "providers.local.provider:LocalProvider",
    # Each cloud's module raises ImportError when its extra (pulumi, the cloud's Pulumi SDK) is missing.
    "aws": "providers.aws.provider:AwsProvider",
    "gcp": "providers.gcp.provider:GcpProvider",
    "azure": "providers.azure.provider:AzureProvider",
}


def provider_names() -> list[str]:
    """Every registered provider, available on this machine or not (``gridctl check`` lists them all)."""
    return list(_REGISTRY)


def register_provider(name: str, target: str) -> None:
    """Register a provider class by ``"module:Class"``; it is imported only when asked for."""
    _REGISTRY[name] = target


def _load(name: str) -> type[Provider]:
    module_name, _, class_name = _REGISTRY[name].partition(":")
    provider_class: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return provider_class


def available_providers() -> dict[str, type[Provider]]:
    """The providers whose code and SDK import on this machine. A missing SDK hides its provider."""
    found: dict[str, type[Provider]] = {}
    for name in _REGISTRY:
        try:
            found[name] = _load(name)
        except ImportError:
            continue
    return found


def get_provider(name: str, deployments_dir: Path) -> Provider:
    if name not in _REGISTRY:
        raise ProviderUnavailable(name, f"unknown provider; known: {', '.join(sorted(_REGISTRY))}")
    try:
        provider_class = _load(name)
    except ImportError as exc:
        raise ProviderUnavailable(name, f"{exc}; install the extra: pip install 'gridctl[{name}]'") from None
    return provider_class(deployments_dir)
