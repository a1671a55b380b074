"""What every cloud program shares: the settings a cloud deployment is built from, its secrets, its
labels, and the context its machines' cloud-init is rendered with.

Nothing here imports Pulumi or a cloud SDK: the CLI and the provider classes use it freely.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets as secrets_module
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from providers.base import DeploymentSpec, validate_name
from providers.build import MachineBuild

# Addresses inside every deployment's private network. The Node's address is fixed so that the Workers'
# cloud-init (and so the Worker pool) never depends on the Node's instance: changing one never touches the other.
NETWORK_CIDR = "10.42.0.0/16"
PUBLIC_SUBNET_CIDR = "10.42.1.0/24"  # the Node and the Network service
WORKER_SUBNET_CIDR = "10.42.2.0/24"  # Workers: no public addresses
DATABASE_SUBNET_CIDRS = ("10.42.3.0/24", "10.42.4.0/24")  # managed PostgreSQL (two zones where the cloud asks)
NODE_PRIVATE_IP = "10.42.1.10"
NETWORK_PRIVATE_IP = "10.42.1.11"
API_PORT = 8000  # the Node's uvicorn on 127.0.0.1; Caddy serves it on 443
HTTPS_PORT = 443
SSH_PORT = 22
POSTGRES_PORT = 5432
HTTP_PORT = 80  # opened (to everyone) only with --domain: the ACME server's HTTP-01 challenge
# The static public addresses the programs' offline plans (Pulumi's mocks) give the machines: documentation range
# (RFC 5737), the Node's and the Network machine's distinct, so a rule naming one is told from one naming the other.
OFFLINE_NODE_ADDRESS = "192.0.2.10"
OFFLINE_NETWORK_ADDRESS = "192.0.2.11"


def offline_public_address(resource_name: str) -> str:
    """The public address a plan's mocks give the static address named ``resource_name`` (``<name>-network-ip`` is
    the Network machine's; the Node's and the NAT gateway's share the other)."""
    return OFFLINE_NETWORK_ADDRESS if resource_name.endswith("-network-ip") else OFFLINE_NODE_ADDRESS


def host_cidr(address: str) -> str:
    """One address as a CIDR (``a.b.c.d/32``): a firewall rule's source naming one machine."""
    return f"{address}/32"
# The Ray head beside the Node runs no tasks (jobs run on Workers only) and keeps a bounded object store: the
# Node's model specs and results pass through it, the tensors do not (Workers read them from the bucket).
HEAD_OBJECT_STORE_BYTES = 1024**3
# Ray's session directory (its unix sockets, logs): shared by the head and the Node, its driver, which must
# reach the head's sockets. It is under /var/lib/gridctl, which the Node's sandbox may write, not under /tmp,
# which systemd's PrivateTmp would make a different directory for each service.
RAY_TEMP_DIR = "/var/lib/gridctl/ray"
WORKER_RESOURCE = "grid_worker"  # grid_runtime/compute/cluster.py's: every job requires it (its test checks both agree)


@dataclass(frozen=True)
class RayPorts:
    """Every port Ray listens on, pinned so the firewall can open exactly these, and only to the Workers."""

    gcs_port: int = 6379
    node_manager_port: int = 6380
    object_manager_port: int = 6381
    runtime_env_agent_port: int = 6382
    dashboard_agent_grpc_port: int = 6383
    dashboard_agent_listen_port: int = 6384
    metrics_export_port: int = 6385
    # Ray's own defaults are avoided: 10001 is the client server's (head), 10002-19999 the default worker
    # range, 8265 the dashboard, 52365 the dashboard agent's; a worker range holding one of them makes
    # 'ray start' refuse ("worker_ports is trying to use a port number 10001 ...").
    min_worker_port: int = 11000
    max_worker_port: int = 11999

    def ranges(self) -> list[tuple[int, int]]:
        """(first, last) port ranges, inclusive."""
        return [(self.gcs_port, self.metrics_export_port), (self.min_worker_port, self.max_worker_port)]

    def opened(self) -> set[int]:
        return {port for first, last in self.ranges() for port in range(first, last + 1)}


RAY_PORTS = RayPorts()
#: Ports Ray uses by default when not told otherwise: none may fall in what the firewall opens for Ray, except
#: the GCS port, which gridctl sets explicitly.
RAY_DEFAULT_PORTS = {"ray_client_server_port": 10001, "dashboard_port": 8265, "dashboard_agent_listen_port": 52365}


@dataclass(frozen=True)
class DeploymentSecrets:
    """Generated on the operator's machine, stored owner-only in the deployment's state dir, handed to the
    program as Pulumi secrets, put in the cloud's secret store, and read there by the machines at boot."""

    setup_token: str  # the Node's one-time Owner setup token
    ray_token: str  # Ray's cluster token (RAY_AUTH_MODE=token)
    database_password: str  # managed PostgreSQL's admin password (unused with SQLite)
    network_setup_token: str  # the Network service's one-time setup token

    @classmethod
    def generate(cls) -> DeploymentSecrets:
        return cls(
            setup_token="gsetup_" + secrets_module.token_urlsafe(32),
            ray_token=secrets_module.token_hex(32),
            database_password=secrets_module.token_urlsafe(24),
            network_setup_token="gsetup_" + secrets_module.token_urlsafe(32),
        )

    def values(self) -> list[str]:
        return [self.setup_token, self.ray_token, self.database_password, self.network_setup_token]


@dataclass(frozen=True)
class CloudSettings:
    """Everything a cloud program is built from. Plain values only, so a plan is reproducible offline."""

    name: str
    region: str
    allow_cidrs: tuple[str, ...]  # API ingress (443); the operator's address, widened with --allow-cidr
    secrets: DeploymentSecrets = field(repr=False)
    suffix: str  # random, chosen once per deployment: makes global names (buckets, vaults) unique
    workers: int = 0
    node_instance_type: str | None = None
    worker_instance_type: str | None = None
    managed_database: bool = False
    network: bool = False
    ssh_cidrs: tuple[str, ...] = ()  # empty: no SSH at all
    ssh_public_key: str | None = None
    # Azure refuses a Linux VM without an SSH key: without --ssh-key, a key generated once whose private
    # half was never kept (and no SSH rule exists anyway).
    admin_public_key: str | None = None
    domain: str | None = None  # with a domain, Caddy gets a public certificate; without, its own CA signs
    # The operator's own gridctl (providers/build.py): uploaded to the bucket, installed by hash on every machine.
    build: MachineBuild | None = None
    subscription: str | None = None  # Azure subscription, recorded at first deploy
    project: str | None = None  # GCP project
    disk_gb: int = 50

    def __post_init__(self) -> None:
        validate_name(self.name)
        if not self.allow_cidrs:
            raise ValueError("give at least one CIDR the API may be reached from (the operator's address)")
        for cidr in (*self.allow_cidrs, *self.ssh_cidrs):
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError naming the bad value
        if self.workers < 0:
            raise ValueError("workers must be 0 or more")
        if self.ssh_cidrs and not self.ssh_public_key:
            raise ValueError("SSH needs a public key (--ssh-key); no password login is ever enabled")

    @classmethod
    def from_spec(cls, spec: DeploymentSpec, *, secrets: DeploymentSecrets, suffix: str, **extra: Any) -> CloudSettings:
        """Build from the operator's :class:`DeploymentSpec`; ``extra`` carries cloud-only fields (project,
        ssh_cidrs, ...)."""
        if not spec.region:
            raise ValueError("a cloud deployment needs a region (--region)")
        return cls(
            name=spec.name,
            region=spec.region,
            allow_cidrs=tuple(spec.allow_cidr),
            secrets=secrets,
            suffix=suffix,
            workers=spec.workers,
            node_instance_type=spec.instance_type,
            managed_database=spec.database == "managed",
            network=spec.network,
            **extra,
        )

    def with_workers(self, workers: int) -> CloudSettings:
        return replace(self, workers=workers)

    @property
    def labels(self) -> dict[str, str]:
        """Put on every resource that takes labels or tags."""
        return {"gridctl-deployment": self.name, "managed-by": "gridctl"}

    def global_name(self, kind: str, *, max_length: int = 63, separator: str = "-") -> str:
        """A globally unique, deterministic name: bucket, storage account, key vault."""
        stem = f"gridctl{separator}{self.name}{separator}{kind}"
        tail = f"{separator}{self.suffix}"
        if len(stem) + len(tail) > max_length:
            digest = hashlib.sha256(stem.encode()).hexdigest()[:6]
            stem = stem[: max_length - len(tail) - 7] + separator + digest
        return (stem + tail)[:max_length]


def new_suffix() -> str:
    return secrets_module.token_hex(3)


# The objects of the bucket where a machine publishes the root of the CA its Caddy serves with (a deployment
# without --domain): the Node's, and the Network machine's beside it.
CA_OBJECT = "gridctl/tls-root.crt"
NETWORK_CA_OBJECT = "gridctl/network-tls-root.crt"


def ca_object(role: str) -> str:
    """The object ``role``'s machine publishes its TLS root to (Workers serve nothing: the Node's)."""
    return NETWORK_CA_OBJECT if role == "network" else CA_OBJECT


def roles(settings: CloudSettings) -> list[str]:
    """The roles of a deployment's machines: the Node and its Workers, and the Network machine with --network."""
    return ["node", "worker"] + (["network"] if settings.network else [])


# The Node keeps tensors in the deployment's bucket: its fsspec driver comes with this extra of gridctl.
STORAGE_EXTRA = {"aws": "s3", "gcp": "gcs", "azure": "azure-storage"}


def require_build(settings: CloudSettings) -> MachineBuild:
    if settings.build is None:
        raise ValueError("a cloud deployment ships the operator's own gridctl build (providers/build.py); none given")
    return settings.build


def machine_context(
    settings: CloudSettings, *, cloud: str, role: str, secret_reference: Callable[[str], str], bucket: str,
    object_store_options: dict[str, Any] | None = None, public_address: str = "", **cloud_context: Any
) -> dict[str, Any]:
    """The context cloud-init templates are rendered with: names and addresses only, never a secret value.
    ``secret_reference(key)`` names a secret in the cloud's store (:func:`role_secrets`). ``object_store_options``
    are the Node's fsspec options for its bucket (credentials come from the machine's identity, never from here).
    ``public_address`` is the machine's public IP as the program knows it (Caddy serves on it); empty for Workers,
    which have none. ``--domain`` names the Node: the Network's machine (``role`` "network") always serves its
    address with its own CA, published to its own object."""
    return {
        "object_store_options": object_store_options or {},
        "cloud": cloud,
        "deployment": settings.name,
        "domain": "" if role == "network" else settings.domain or "",
        "ssh_public_key": settings.ssh_public_key if settings.ssh_cidrs else "",
        "build": require_build(settings).machine_context(STORAGE_EXTRA[cloud]),
        "head_address": NODE_PRIVATE_IP,
        "api_port": API_PORT,
        "ray": RAY_PORTS,
        "ray_temp_dir": RAY_TEMP_DIR,
        "worker_resource": WORKER_RESOURCE,
        "head_object_store_bytes": HEAD_OBJECT_STORE_BYTES,
        "public_address": public_address,
        "secrets": role_secrets(role, settings, secret_reference),
        "bucket": bucket,
        "ca_object": ca_object(role),
        **cloud_context,
    }


# --- which machine reads which secret ------------------------------------------------------------------------

SETUP_TOKEN = "setup-token"  # noqa: S105  (secret names, not values)
RAY_TOKEN = "ray-token"  # noqa: S105
DATABASE_URL = "database-url"
NETWORK_SETUP_TOKEN = "network-setup-token"  # noqa: S105

# Where bootstrap.py puts each secret on the machine (owner-only, owned by the service user), or the
# environment variable it becomes in /var/lib/gridctl/secrets/service.env.
_SECRET_TARGETS: dict[str, dict[str, str]] = {
    SETUP_TOKEN: {"path": "/var/lib/gridctl/node/setup-token"},
    RAY_TOKEN: {"path": "/var/lib/gridctl/secrets/ray-token"},
    DATABASE_URL: {"env": "GRID_NODE_DATABASE_URL"},
    NETWORK_SETUP_TOKEN: {"path": "/var/lib/gridctl/network/setup-token"},
}


def role_secret_keys(role: str, settings: CloudSettings) -> list[str]:
    if role == "node":
        return [SETUP_TOKEN, RAY_TOKEN] + ([DATABASE_URL] if settings.managed_database else [])
    if role == "worker":
        return [RAY_TOKEN]
    if role == "network":
        return [NETWORK_SETUP_TOKEN]
    raise ValueError(f"unknown role {role!r}")


def role_secrets(role: str, settings: CloudSettings, reference: Callable[[str], str]) -> list[dict[str, str]]:
    """The secrets ``role``'s machines read at boot: ``reference(key)`` is the name in the cloud's store."""
    return [{"key": key, "ref": reference(key), **_SECRET_TARGETS[key]} for key in role_secret_keys(role, settings)]


def stored_secrets(settings: CloudSettings) -> dict[str, str]:
    """The generated secrets the program puts in the cloud's store (the database URL is added by the
    program, once the database's address is known)."""
    values = {SETUP_TOKEN: settings.secrets.setup_token, RAY_TOKEN: settings.secrets.ray_token}
    if settings.network:
        values[NETWORK_SETUP_TOKEN] = settings.secrets.network_setup_token
    return values
