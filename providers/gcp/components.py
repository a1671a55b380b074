"""GCP components of a deployment: PrivateNetwork, SecretStore, Storage, Database, Node, WorkerPool,
NetworkService. Each is a ``ComponentResource`` with an args class; children are created with
``parent=self`` and named after the component; outputs are registered.

Imported only by ``program.py`` (and so only when a stack runs or a plan is made): it imports Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from providers.cloud import RAY_PORTS, RayPorts, host_cidr


def _ports(ranges: Sequence[tuple[int, int]]) -> list[str]:
    return [f"{first}-{last}" if first != last else str(first) for first, last in ranges]


@dataclass
class PrivateNetworkArgs:
    public_subnet_cidr: str
    worker_subnet_cidr: str
    region: str
    allow_cidrs: Sequence[str]
    ssh_cidrs: Sequence[str]
    node_tag: str
    worker_tag: str
    network_service_tag: str
    private_services: bool  # reserve a range and peer it for Cloud SQL's private IP
    services_range: tuple[str, int]
    labels: Mapping[str, str]
    ray_ports: RayPorts = RAY_PORTS
    acme: bool = False  # with --domain: port 80 open to everyone for the ACME HTTP-01 challenge
    nat: bool = True  # Cloud NAT for the Workers' way out; none while there are no Workers


class PrivateNetwork(pulumi.ComponentResource):
    """A custom-mode VPC: a subnet for the Node and the Network service, one for Workers (which reach the
    internet through Cloud NAT only), and firewall rules: 443 from the allowed CIDRs, SSH only if asked, Ray
    ports only between the Node and the Workers. Everything else inbound hits GCP's implied deny."""

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = gcp.compute.Network(f"{name}-vpc", auto_create_subnetworks=False, opts=child)
        self.public_subnet = gcp.compute.Subnetwork(
            f"{name}-public",
            network=self.network.id,
            region=args.region,
            ip_cidr_range=args.public_subnet_cidr,
            private_ip_google_access=True,
            opts=child,
        )
        self.worker_subnet = gcp.compute.Subnetwork(
            f"{name}-workers",
            network=self.network.id,
            region=args.region,
            ip_cidr_range=args.worker_subnet_cidr,
            private_ip_google_access=True,
            opts=child,
        )
        self.worker_egress: list[pulumi.Resource] = []  # what Workers need before they boot
        if args.nat:
            router = gcp.compute.Router(f"{name}-router", network=self.network.id, region=args.region, opts=child)
            self.worker_egress.append(gcp.compute.RouterNat(
                f"{name}-nat",
                router=router.name,
                region=args.region,
                nat_ip_allocate_option="AUTO_ONLY",
                source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                subnetworks=[{"name": self.worker_subnet.id, "source_ip_ranges_to_nats": ["ALL_IP_RANGES"]}],
                opts=child,
            ))

        def firewall(
            rule: str,
            ports: list[str],
            targets: list[str],
            *,
            sources: Sequence[str] = (),
            source_tags: Sequence[str] = (),
            description: str,
        ) -> None:
            gcp.compute.Firewall(
                f"{name}-{rule}",
                network=self.network.id,
                direction="INGRESS",
                description=description,
                allows=[{"protocol": "tcp", "ports": ports}],
                target_tags=targets,
                source_ranges=list(sources) or None,
                source_tags=list(source_tags) or None,
                opts=child,
            )

        firewall(
            "https",
            ["443"],
            [args.node_tag, args.network_service_tag],
            sources=args.allow_cidrs,
            description="the API over TLS from the allowed CIDRs",
        )
        if args.acme:
            firewall(
                "acme",
                ["80"],
                [args.node_tag],
                sources=["0.0.0.0/0"],
                description="ACME HTTP-01 for the domain's certificate (Caddy answers nothing else on 80)",
            )
        if args.ssh_cidrs:
            firewall(
                "ssh",
                ["22"],
                [args.node_tag, args.network_service_tag],
                sources=args.ssh_cidrs,
                description="SSH, asked for",
            )
        ray_ports = _ports(args.ray_ports.ranges())
        firewall(
            "ray-to-node",
            ray_ports,
            [args.node_tag],
            source_tags=[args.worker_tag],
            description="Ray from the Workers to the head",
        )
        firewall(
            "ray-to-workers",
            ray_ports,
            [args.worker_tag],
            source_tags=[args.node_tag, args.worker_tag],
            description="Ray from the head and between Workers",
        )

        self.services_connection: gcp.servicenetworking.Connection | None = None
        if args.private_services:
            reserved = gcp.compute.GlobalAddress(
                f"{name}-services",
                purpose="VPC_PEERING",
                address_type="INTERNAL",
                address=args.services_range[0],
                prefix_length=args.services_range[1],
                network=self.network.id,
                labels=dict(args.labels),
                opts=child,
            )
            self.services_connection = gcp.servicenetworking.Connection(
                f"{name}-services",
                network=self.network.id,
                service="servicenetworking.googleapis.com",
                reserved_peering_ranges=[reserved.name],
                # Google keeps the peering until the Cloud SQL instance is gone for good (days after its
                # deletion): deleting it fails the destroy. Abandoned, it goes with the network.
                deletion_policy="ABANDON",
                opts=child,
            )
        self._name = name
        self.register_outputs(
            {"network": self.network.id, "public_subnet": self.public_subnet.id, "worker_subnet": self.worker_subnet.id}
        )

    def allow_https_from_peer(
        self, rule: str, target_tag: str, address: pulumi.Input[str], description: str
    ) -> gcp.compute.Firewall:
        """443 on the machines tagged ``target_tag`` from one machine's external address (``a.b.c.d/32``): the
        Node and its Network reach each other at their external addresses. A rule of its own, declared once the
        address exists."""
        return gcp.compute.Firewall(
            f"{self._name}-{rule}",
            network=self.network.id,
            direction="INGRESS",
            description=description,
            allows=[{"protocol": "tcp", "ports": ["443"]}],
            target_tags=[target_tag],
            source_ranges=[pulumi.Output.from_input(address).apply(host_cidr)],
            opts=pulumi.ResourceOptions(parent=self),
        )


@dataclass
class SecretStoreArgs:
    ids: Mapping[str, str]  # key -> secret id, known before anything exists
    values: Mapping[str, pulumi.Input[str]]
    labels: Mapping[str, str]


class SecretStore(pulumi.ComponentResource):
    """Secret Manager secrets. Machines read them at boot as their service account; metadata only names them."""

    def __init__(self, name: str, args: SecretStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:SecretStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.secrets: dict[str, gcp.secretmanager.Secret] = {}
        for key, value in args.values.items():
            secret = gcp.secretmanager.Secret(
                f"{name}-{key}", secret_id=args.ids[key], labels=dict(args.labels), replication={"auto": {}}, opts=child
            )
            gcp.secretmanager.SecretVersion(
                f"{name}-{key}", secret=secret.id, secret_data=pulumi.Output.secret(value), opts=child
            )
            self.secrets[key] = secret
        self.register_outputs({key: secret.id for key, secret in self.secrets.items()})

    def grant(self, name: str, member: pulumi.Input[str], *keys: str) -> None:
        for key in keys:
            gcp.secretmanager.SecretIamMember(
                f"{name}-{key}",
                secret_id=self.secrets[key].id,
                role="roles/secretmanager.secretAccessor",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )


@dataclass
class StorageArgs:
    bucket_name: str
    location: str
    labels: Mapping[str, str]


class Storage(pulumi.ComponentResource):
    """The GCS bucket for tensors: uniform access, public access prevented, encrypted at rest by Google."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:Storage", name, None, opts)
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=args.bucket_name,
            location=args.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,
            labels=dict(args.labels),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"bucket": self.bucket.name})

    def put_file(self, name: str, key: str, path: str) -> gcp.storage.BucketObject:
        """A file of the operator's machine as an object of the bucket (the build the machines install)."""
        return gcp.storage.BucketObject(
            name, bucket=self.bucket.name, name=key, source=pulumi.FileAsset(path),
            content_type="application/octet-stream", opts=pulumi.ResourceOptions(parent=self),
        )

    def grant(self, name: str, member: pulumi.Input[str], role: str = "roles/storage.objectUser") -> None:
        gcp.storage.BucketIAMMember(
            f"{name}-bucket",
            bucket=self.bucket.name,
            role=role,
            member=member,
            opts=pulumi.ResourceOptions(parent=self),
        )


@dataclass
class MachineIdentityArgs:
    account_id: str
    description: str


class MachineIdentity(pulumi.ComponentResource):
    """A service account for one kind of machine; grants are made on each secret and on the bucket."""

    def __init__(self, name: str, args: MachineIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:MachineIdentity", name, None, opts)
        self.account = gcp.serviceaccount.Account(
            f"{name}-account",
            account_id=args.account_id,
            display_name=args.description,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.email = self.account.email
        self.member = self.account.email.apply(lambda email: f"serviceAccount:{email}")
        self.register_outputs({"email": self.email})


@dataclass
class DatabaseArgs:
    region: str
    network_id: pulumi.Input[str]
    password: pulumi.Input[str]
    labels: Mapping[str, str]
    tier: str
    depends_on: Sequence[pulumi.Resource]


class Database(pulumi.ComponentResource):
    """Cloud SQL PostgreSQL on a private IP only, TLS required, encrypted at rest, backed up daily."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.instance = gcp.sql.DatabaseInstance(
            f"{name}-postgres",
            database_version="POSTGRES_16",
            region=args.region,
            deletion_protection=False,
            settings={
                # PostgreSQL 16 defaults to ENTERPRISE_PLUS, which refuses custom and shared-core tiers.
                "edition": "ENTERPRISE",
                "tier": args.tier,
                "user_labels": dict(args.labels),
                "ip_configuration": {
                    "ipv4_enabled": False,
                    "private_network": args.network_id,
                    "ssl_mode": "ENCRYPTED_ONLY",
                },
                "backup_configuration": {"enabled": True},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        gcp.sql.Database(f"{name}-grid", name="grid", instance=self.instance.name, opts=child)
        gcp.sql.User(
            f"{name}-gridctl",
            name="gridctl",
            instance=self.instance.name,
            password=pulumi.Output.secret(args.password),
            opts=child,
        )
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.instance.private_ip_address, args.password).apply(
                lambda values: f"postgresql+psycopg://gridctl:{values[1]}@{values[0]}:5432/grid?sslmode=require"
            )
        )
        self.register_outputs({"private_ip": self.instance.private_ip_address})


def _metadata(user_data: str) -> dict[str, str]:
    # OS Login and no project-wide keys: the only SSH key a machine accepts is the one cloud-init installs
    # when the operator asked for SSH.
    return {"user-data": user_data, "block-project-ssh-keys": "TRUE", "enable-oslogin": "FALSE"}


SHIELDED = {"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True}


@dataclass
class ServerArgs:
    zone: pulumi.Input[str]
    region: str
    subnet_id: pulumi.Input[str]
    private_ip: str
    machine_type: str
    image: str
    service_account: pulumi.Input[str]
    # The machine's cloud-init, given its static external address (Caddy serves on it).
    user_data: Callable[[pulumi.Output[str]], pulumi.Input[str]]
    disk_gb: int
    network_tag: str
    labels: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = ()  # the build objects it installs at first boot


class Server(pulumi.ComponentResource):
    """A Compute Engine instance at a fixed private address with a static external address."""

    def __init__(self, type_name: str, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_name, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.address = gcp.compute.Address(f"{name}-ip", region=args.region, labels=dict(args.labels), opts=child)
        self.instance = gcp.compute.Instance(
            f"{name}-instance",
            zone=args.zone,
            machine_type=args.machine_type,
            labels=dict(args.labels),
            tags=[args.network_tag],
            allow_stopping_for_update=True,
            metadata=pulumi.Output.from_input(args.user_data(self.address.address)).apply(_metadata),
            boot_disk={
                "auto_delete": True,
                "initialize_params": {
                    "image": args.image,
                    "size": args.disk_gb,
                    "type": "pd-balanced",
                    "labels": dict(args.labels),
                },
            },
            network_interfaces=[
                {
                    "subnetwork": args.subnet_id,
                    "network_ip": args.private_ip,
                    "access_configs": [{"nat_ip": self.address.address}],
                }
            ],
            service_account={"email": args.service_account, "scopes": ["cloud-platform"]},
            shielded_instance_config=SHIELDED,
            # cloud-init runs once: new user-data takes effect only on a new machine (the provider asks the
            # operator before it replaces a Node holding data, see providers/cloud_provider.py).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["boot_disk"], replace_on_changes=["metadata"],
                                        depends_on=list(args.depends_on)),
        )
        self.public_ip = self.address.address
        self.register_outputs(
            {"public_ip": self.public_ip, "private_ip": args.private_ip, "instance": self.instance.name}
        )


class Node(Server):
    """The Node: API behind Caddy's TLS on 443, the Ray head beside it."""

    def __init__(self, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:Node", name, args, opts)


class NetworkService(Server):
    """The optional Network service: its API behind Caddy's TLS on 443."""

    def __init__(self, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:NetworkService", name, args, opts)


@dataclass
class WorkerPoolArgs:
    count: int
    zone: pulumi.Input[str]
    region: str
    subnet_id: pulumi.Input[str]
    machine_type: str
    image: str
    service_account: pulumi.Input[str]
    user_data: str
    disk_gb: int
    network_tag: str
    labels: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = ()  # the build objects the Workers install at first boot


class WorkerPool(pulumi.ComponentResource):
    """Workers as a managed instance group of an instance template: no external address, shielded VMs,
    encrypted disks; each joins the Ray head at boot. Scaling changes the group's target size only."""

    def __init__(self, name: str, args: WorkerPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:gcp:WorkerPool", name, None, opts)
        self.template = gcp.compute.InstanceTemplate(
            f"{name}-template",
            name_prefix=f"{name}-",
            machine_type=args.machine_type,
            region=args.region,
            labels=dict(args.labels),
            tags=[args.network_tag],
            metadata=_metadata(args.user_data),
            disks=[
                {
                    "source_image": args.image,
                    "boot": True,
                    "auto_delete": True,
                    "disk_size_gb": args.disk_gb,
                    "disk_type": "pd-balanced",
                    "labels": dict(args.labels),
                }
            ],
            network_interfaces=[{"subnetwork": args.subnet_id}],  # no access_configs: no external address
            service_account={"email": args.service_account, "scopes": ["cloud-platform"]},
            shielded_instance_config=SHIELDED,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.group = gcp.compute.InstanceGroupManager(
            f"{name}-group",
            base_instance_name=f"{name}",
            zone=args.zone,
            target_size=args.count,
            versions=[{"instance_template": self.template.self_link_unique, "name": "workers"}],
            # A new template (new user-data: a new build) replaces the Workers.
            update_policy={"type": "PROACTIVE", "minimal_action": "REPLACE", "max_surge_fixed": 1,
                           "max_unavailable_fixed": 1},
            wait_for_instances=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"group": self.group.name, "count": args.count})
