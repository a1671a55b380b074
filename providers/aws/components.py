"""AWS components of a deployment: PrivateNetwork, SecretStore, Storage, Database, Node, WorkerPool,
NetworkService. Each is a ``ComponentResource`` with an args class; children are created with
``parent=self`` and named after the component; outputs are registered.

Imported only by ``program.py`` (and so only when a stack runs or a plan is made): it imports Pulumi.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from providers.cloud import RAY_PORTS, RayPorts, host_cidr

EVERYWHERE = "0.0.0.0/0"  # noqa: S104  (egress only: machines reach package mirrors and the cloud's APIs)


def _tags(tags: Mapping[str, str], name: str) -> dict[str, str]:
    return {**tags, "Name": name}


def _ec2_assume_role() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )


# --- the private network ----------------------------------------------------------------------------------


@dataclass
class PrivateNetworkArgs:
    cidr: str
    public_subnet_cidr: str
    worker_subnet_cidr: str
    database_subnet_cidrs: Sequence[str]  # empty: no managed database
    zones: pulumi.Input[Sequence[str]]
    allow_cidrs: Sequence[str]  # 443 on the Node and the Network service
    ssh_cidrs: Sequence[str]  # 22; empty means no SSH rule at all
    tags: Mapping[str, str]
    ray_ports: RayPorts = RAY_PORTS
    nat: bool = True  # a NAT gateway (~$35/month) for the Workers' way out; none while there are no Workers
    acme: bool = False  # with --domain: port 80 open to everyone for the ACME HTTP-01 challenge


class PrivateNetwork(pulumi.ComponentResource):
    """A VPC with a public subnet (the Node, the Network service, the NAT gateway) and a private one for
    Workers, which reach the internet only through NAT. Security groups: the API on 443 from the allowed
    CIDRs only, SSH only if asked, Ray ports only between the Node and the Workers."""

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        zones = pulumi.Output.from_input(args.zones)
        tags = args.tags

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=_tags(tags, f"{name}-vpc"),
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=_tags(tags, f"{name}-igw"), opts=child
        )
        self.gateway = gateway
        self.public_subnet = aws.ec2.Subnet(
            f"{name}-public",
            vpc_id=self.vpc.id,
            cidr_block=args.public_subnet_cidr,
            availability_zone=zones[0],
            map_public_ip_on_launch=False,
            tags=_tags(tags, f"{name}-public"),
            opts=child,
        )
        self.worker_subnet = aws.ec2.Subnet(
            f"{name}-workers",
            vpc_id=self.vpc.id,
            cidr_block=args.worker_subnet_cidr,
            availability_zone=zones[0],
            map_public_ip_on_launch=False,
            tags=_tags(tags, f"{name}-workers"),
            opts=child,
        )
        self.database_subnets = [
            aws.ec2.Subnet(
                f"{name}-database-{i}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zones[i],
                map_public_ip_on_launch=False,
                tags=_tags(tags, f"{name}-database-{i}"),
                opts=child,
            )
            for i, cidr in enumerate(args.database_subnet_cidrs)
        ]

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": EVERYWHERE, "gateway_id": gateway.id}],
            tags=_tags(tags, f"{name}-public-routes"),
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-routes", subnet_id=self.public_subnet.id, route_table_id=public_routes.id, opts=child
        )
        # What Workers need before they boot (their way out to the package mirrors); empty without Workers.
        self.worker_egress: list[pulumi.Resource] = []
        if args.nat:
            after_gateway = pulumi.ResourceOptions(parent=self, depends_on=[gateway])
            nat_address = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=_tags(tags, f"{name}-nat"), opts=after_gateway)
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=nat_address.id,
                subnet_id=self.public_subnet.id,
                tags=_tags(tags, f"{name}-nat"),
                opts=after_gateway,
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-routes",
                vpc_id=self.vpc.id,
                routes=[{"cidr_block": EVERYWHERE, "nat_gateway_id": nat.id}],
                tags=_tags(tags, f"{name}-private-routes"),
                opts=child,
            )
            association = aws.ec2.RouteTableAssociation(
                f"{name}-worker-routes", subnet_id=self.worker_subnet.id, route_table_id=private_routes.id,
                opts=child,
            )
            self.worker_egress = [nat, association]

        self.node_group = aws.ec2.SecurityGroup(
            f"{name}-node",
            vpc_id=self.vpc.id,
            description="gridctl Node: API from allowed CIDRs, Ray from Workers",
            tags=_tags(tags, f"{name}-node"),
            opts=child,
        )
        self.worker_group = aws.ec2.SecurityGroup(
            f"{name}-worker",
            vpc_id=self.vpc.id,
            description="gridctl Workers: Ray from the Node and each other",
            tags=_tags(tags, f"{name}-worker"),
            opts=child,
        )
        self.network_service_group = aws.ec2.SecurityGroup(
            f"{name}-network-service",
            vpc_id=self.vpc.id,
            description="gridctl Network: API from allowed CIDRs",
            tags=_tags(tags, f"{name}-network-service"),
            opts=child,
        )

        def ingress(
            rule: str,
            group: aws.ec2.SecurityGroup,
            ports: tuple[int, int],
            *,
            cidr: str | None = None,
            source: aws.ec2.SecurityGroup | None = None,
            description: str,
        ) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=ports[0],
                to_port=ports[1],
                cidr_ipv4=cidr,
                referenced_security_group_id=source.id if source else None,
                description=description,
                tags=_tags(tags, f"{name}-{rule}"),
                opts=child,
            )

        for i, cidr in enumerate(args.allow_cidrs):
            ingress(f"node-https-{i}", self.node_group, (443, 443), cidr=cidr, description="API over TLS")
            ingress(
                f"network-https-{i}",
                self.network_service_group,
                (443, 443),
                cidr=cidr,
                description="Network API over TLS",
            )
        if args.acme:
            ingress("node-acme", self.node_group, (80, 80), cidr=EVERYWHERE,
                    description="ACME HTTP-01 for the domain's certificate (Caddy answers nothing else on 80)")
        for i, cidr in enumerate(args.ssh_cidrs):
            ingress(f"node-ssh-{i}", self.node_group, (22, 22), cidr=cidr, description="SSH, asked for")
            ingress(f"network-ssh-{i}", self.network_service_group, (22, 22), cidr=cidr, description="SSH, asked for")
        for i, ports in enumerate(args.ray_ports.ranges()):
            ingress(f"node-ray-{i}", self.node_group, ports, source=self.worker_group, description="Ray from Workers")
            ingress(
                f"worker-ray-{i}", self.worker_group, ports, source=self.node_group, description="Ray from the Node"
            )
            ingress(
                f"worker-peer-ray-{i}",
                self.worker_group,
                ports,
                source=self.worker_group,
                description="Ray between Workers",
            )
        for group_name, group in (
            ("node", self.node_group),
            ("worker", self.worker_group),
            ("network-service", self.network_service_group),
        ):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{group_name}-egress",
                security_group_id=group.id,
                ip_protocol="-1",
                cidr_ipv4=EVERYWHERE,
                description="outbound",
                tags=_tags(tags, f"{name}-{group_name}-egress"),
                opts=child,
            )

        self._name = name
        self._tags = tags
        self.register_outputs(
            {
                "vpc_id": self.vpc.id,
                "public_subnet_id": self.public_subnet.id,
                "worker_subnet_id": self.worker_subnet.id,
            }
        )

    def allow_https_from_peer(
        self, rule: str, group: aws.ec2.SecurityGroup, address: pulumi.Input[str], description: str
    ) -> aws.vpc.SecurityGroupIngressRule:
        """443 on ``group`` from one machine's public address (``a.b.c.d/32``): the Node and its Network reach
        each other at their public addresses. A rule of its own, declared once the address exists, so the group
        is there before either machine."""
        return aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-{rule}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=pulumi.Output.from_input(address).apply(host_cidr),
            description=description,
            tags=_tags(self._tags, f"{self._name}-{rule}"),
            opts=pulumi.ResourceOptions(parent=self),
        )


# --- secrets --------------------------------------------------------------------------------------------


@dataclass
class SecretStoreArgs:
    prefix: str  # e.g. "gridctl/demo": secret names are "<prefix>/<key>", known before anything exists
    values: Mapping[str, pulumi.Input[str]]  # key -> value; values are wrapped as Pulumi secrets
    tags: Mapping[str, str]


class SecretStore(pulumi.ComponentResource):
    """Secrets Manager entries. Machines read them at boot with their instance role; user-data only names
    them."""

    def __init__(self, name: str, args: SecretStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:SecretStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.secrets: dict[str, aws.secretsmanager.Secret] = {}
        for key, value in args.values.items():
            secret = aws.secretsmanager.Secret(
                f"{name}-{key}",
                name=f"{args.prefix}/{key}",
                description=f"gridctl {key}",
                recovery_window_in_days=0,  # a redeploy under the same name must be able to create it again
                tags=_tags(args.tags, f"{name}-{key}"),
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{key}", secret_id=secret.id, secret_string=pulumi.Output.secret(value), opts=child
            )
            self.secrets[key] = secret
        self.register_outputs({key: secret.arn for key, secret in self.secrets.items()})

    def read_policy(self, *keys: str) -> pulumi.Output[str]:
        arns = [self.secrets[key].arn for key in keys]
        return pulumi.Output.all(*arns).apply(
            lambda resolved: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": list(resolved)}
                    ],
                }
            )
        )


# --- storage --------------------------------------------------------------------------------------------


@dataclass
class StorageArgs:
    bucket_name: str
    tags: Mapping[str, str]


class Storage(pulumi.ComponentResource):
    """The private S3 bucket for tensors: encrypted, every public access blocked, ACLs off, TLS only."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.tags = args.tags
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=True,
            tags=_tags(args.tags, args.bucket_name),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": True}
            ],
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [arn, f"{arn}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

    def put_file(self, name: str, key: str, path: str) -> aws.s3.BucketObjectv2:
        """A file of the operator's machine as an object of the bucket (the build the machines install)."""
        return aws.s3.BucketObjectv2(
            name, bucket=self.bucket.id, key=key, source=pulumi.FileAsset(path),
            content_type="application/octet-stream", tags=_tags(self.tags, name),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def access_policy(self, *, prefix: str = "", write: bool = True) -> pulumi.Output[str]:
        actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] if write else ["s3:GetObject"]
        return self.bucket.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
                        {"Effect": "Allow", "Action": actions, "Resource": f"{arn}/{prefix}*"},
                    ],
                }
            )
        )


# --- identities -----------------------------------------------------------------------------------------


@dataclass
class MachineIdentityArgs:
    policies: Mapping[str, pulumi.Input[str]]  # policy name -> JSON document
    tags: Mapping[str, str]


class MachineIdentity(pulumi.ComponentResource):
    """An IAM role and instance profile: what one kind of machine may read and write, and nothing more."""

    def __init__(self, name: str, args: MachineIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:MachineIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role", assume_role_policy=_ec2_assume_role(), tags=_tags(args.tags, f"{name}-role"), opts=child
        )
        for policy_name, document in args.policies.items():
            aws.iam.RolePolicy(f"{name}-{policy_name}", role=self.role.id, policy=document, opts=child)
        self.profile = aws.iam.InstanceProfile(
            f"{name}-profile", role=self.role.name, tags=_tags(args.tags, f"{name}-profile"), opts=child
        )
        self.register_outputs({"role": self.role.arn, "profile": self.profile.arn})


# --- the managed database -------------------------------------------------------------------------------


@dataclass
class DatabaseArgs:
    subnet_ids: Sequence[pulumi.Input[str]]
    vpc_id: pulumi.Input[str]
    client_group_id: pulumi.Input[str]  # the Node's security group: the only one that may connect
    password: pulumi.Input[str]
    tags: Mapping[str, str]
    instance_class: str = "db.t4g.micro"
    storage_gb: int = 20


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL: private subnets, encrypted storage, reachable from the Node's security group only."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=list(args.subnet_ids), tags=_tags(args.tags, f"{name}-subnets"), opts=child
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-postgres",
            vpc_id=args.vpc_id,
            description="gridctl database: PostgreSQL from the Node only",
            tags=_tags(args.tags, f"{name}-postgres"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-postgres-from-node",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=5432,
            to_port=5432,
            referenced_security_group_id=args.client_group_id,
            description="PostgreSQL from the Node",
            tags=_tags(args.tags, f"{name}-postgres-from-node"),
            opts=child,
        )
        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            engine="postgres",
            engine_version="16",
            instance_class=args.instance_class,
            allocated_storage=args.storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            publicly_accessible=False,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            db_name="grid",
            username="gridctl",
            password=pulumi.Output.secret(args.password),
            backup_retention_period=7,
            skip_final_snapshot=True,
            deletion_protection=False,
            copy_tags_to_snapshot=True,
            tags=_tags(args.tags, f"{name}-postgres"),
            opts=child,
        )
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.instance.address, args.password).apply(
                lambda values: f"postgresql+psycopg://gridctl:{values[1]}@{values[0]}:5432/grid?sslmode=require"
            )
        )
        self.register_outputs({"address": self.instance.address})


# --- machines -------------------------------------------------------------------------------------------


def _encrypted_root(disk_gb: int) -> dict:
    return {"volume_size": disk_gb, "volume_type": "gp3", "encrypted": True, "delete_on_termination": True}


IMDS_V2_ONLY = {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1}


@dataclass
class ServerArgs:
    """A single public machine at a fixed private address: the Node, or the Network service."""

    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    private_ip: str
    image_id: pulumi.Input[str]
    instance_type: str
    instance_profile: pulumi.Input[str]
    # The machine's cloud-init, given its public address (Caddy serves on it): known from the Elastic IP here,
    # never asked of the instance metadata.
    user_data: Callable[[pulumi.Output[str]], pulumi.Input[str]]
    disk_gb: int
    tags: Mapping[str, str]
    # Resources the machine needs before it boots: the internet gateway (its Elastic IP needs one), the build
    # objects it installs.
    depends_on: Sequence[pulumi.Resource] = ()


class Server(pulumi.ComponentResource):
    """An EC2 instance behind a fixed Elastic IP, attached through its own network interface so that the
    public address exists before the machine boots (cloud-init needs the internet at once)."""

    def __init__(self, type_name: str, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_name, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        interface = aws.ec2.NetworkInterface(
            f"{name}-nic",
            subnet_id=args.subnet_id,
            private_ips=[args.private_ip],
            security_groups=[args.security_group_id],
            tags=_tags(args.tags, f"{name}-nic"),
            opts=child,
        )
        self.address = aws.ec2.Eip(
            f"{name}-ip", domain="vpc", network_interface=interface.id, tags=_tags(args.tags, f"{name}-ip"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.image_id,
            instance_type=args.instance_type,
            iam_instance_profile=args.instance_profile,
            primary_network_interface={"network_interface_id": interface.id},
            user_data=args.user_data(self.address.public_ip),
            # cloud-init runs once: a changed user-data takes effect only on a new machine (the provider asks
            # the operator before it replaces a Node holding data, see providers/cloud_provider.py).
            user_data_replace_on_change=True,
            root_block_device=_encrypted_root(args.disk_gb),
            metadata_options=IMDS_V2_ONLY,
            tags=_tags(args.tags, f"{name}-instance"),
            volume_tags=_tags(args.tags, f"{name}-disk"),
            # A newer Ubuntu image must not replace a machine holding the Node's data.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.address, *args.depends_on],
                                        ignore_changes=["ami"]),
        )
        self.public_ip = self.address.public_ip
        self.register_outputs(
            {"public_ip": self.public_ip, "private_ip": args.private_ip, "instance_id": self.instance.id}
        )


class Node(Server):
    """The Node: API behind Caddy's TLS on 443, the Ray head beside it."""

    def __init__(self, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:Node", name, args, opts)


class NetworkService(Server):
    """The optional Network service: its API behind Caddy's TLS on 443."""

    def __init__(self, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:NetworkService", name, args, opts)


@dataclass
class WorkerPoolArgs:
    count: int
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    image_id: pulumi.Input[str]
    instance_type: str
    instance_profile_arn: pulumi.Input[str]
    user_data: str
    disk_gb: int
    tags: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource] = ()  # the NAT route and the build objects: needed at first boot


class WorkerPool(pulumi.ComponentResource):
    """Workers as an Auto Scaling group of a launch template: private subnet, no public address, encrypted
    disks; each joins the Ray head at boot. Scaling changes the group's size and nothing else."""

    def __init__(self, name: str, args: WorkerPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:aws:WorkerPool", name, None, opts)
        self.template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            image_id=args.image_id,
            instance_type=args.instance_type,
            iam_instance_profile={"arn": args.instance_profile_arn},
            network_interfaces=[
                {
                    "device_index": 0,
                    "associate_public_ip_address": "false",
                    "security_groups": [args.security_group_id],
                    "delete_on_termination": "true",
                }
            ],
            user_data=base64.b64encode(args.user_data.encode()).decode(),
            block_device_mappings=[
                {
                    "device_name": "/dev/sda1",
                    "ebs": {
                        "volume_size": args.disk_gb,
                        "volume_type": "gp3",
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                }
            ],
            metadata_options=IMDS_V2_ONLY,
            tag_specifications=[
                {"resource_type": "instance", "tags": _tags(args.tags, f"{name}-worker")},
                {"resource_type": "volume", "tags": _tags(args.tags, f"{name}-worker-disk")},
            ],
            update_default_version=True,
            tags=_tags(args.tags, f"{name}-template"),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["image_id"]),
        )
        self.group = aws.autoscaling.Group(
            f"{name}-group",
            min_size=args.count,
            max_size=args.count,
            desired_capacity=args.count,
            vpc_zone_identifiers=[args.subnet_id],
            health_check_type="EC2",
            launch_template={"id": self.template.id, "version": self.template.latest_version.apply(str)},
            # A new template version (new user-data: a new build) replaces the Workers, one at a time.
            instance_refresh={"strategy": "Rolling", "preferences": {"min_healthy_percentage": 0}},
            tags=[
                {"key": key, "value": value, "propagate_at_launch": True}
                for key, value in _tags(args.tags, f"{name}-worker").items()
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"group": self.group.name, "count": args.count})
