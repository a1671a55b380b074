"""The AWS Pulumi program of a deployment, and its offline plan.

``build(settings)`` returns the inline program the StackRunner hands to the Automation API;
``plan(settings)`` runs the same program under Pulumi's mocks. Imports Pulumi: only the runner and plan
paths import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from providers import cloud
from providers.aws import config
from providers.aws.components import (
    Database,
    DatabaseArgs,
    MachineIdentity,
    MachineIdentityArgs,
    NetworkService,
    Node,
    PrivateNetwork,
    PrivateNetworkArgs,
    SecretStore,
    SecretStoreArgs,
    ServerArgs,
    Storage,
    StorageArgs,
    WorkerPool,
    WorkerPoolArgs,
)
from providers.cloud import CloudSettings
from providers.stack import DeclaredResource
from providers.stack import plan as plan_offline
from templates.render import render


def machine_context(role: str, settings: CloudSettings, public_address: str = "") -> dict[str, Any]:
    prefix = config.secret_prefix(settings)
    return cloud.machine_context(
        settings,
        public_address=public_address,
        role=role,
        cloud=config.CLOUD,
        secrets=cloud.role_secrets(role, settings, lambda key: f"{prefix}/{key}"),
        bucket=config.bucket_name(settings),
        region=settings.region,
        ca_object=config.NETWORK_CA_OBJECT if role == "network" else config.CA_OBJECT,
        object_store_url=f"s3://{config.bucket_name(settings)}",
        identity_note="the instance profile's IAM role",
    )


def user_data(role: str, settings: CloudSettings, public_address: str = "") -> str:
    """The cloud-init a ``role`` machine boots with, rendered from ``templates/cloud-init/<role>.yaml.j2``."""
    return render(f"cloud-init/{role}.yaml.j2", **machine_context(role, settings, public_address))


def user_data_output(role: str, settings: CloudSettings, public_address: pulumi.Input[str]) -> pulumi.Output[str]:
    """The user-data of a machine whose public address the program allocates (Caddy serves on it)."""
    return pulumi.Output.from_input(public_address).apply(lambda address: user_data(role, settings, address))


def build(settings: CloudSettings) -> Callable[[], None]:
    """The inline Pulumi program for ``settings``."""

    def program() -> None:
        name = settings.name
        tags = settings.labels
        provider = aws.Provider(f"{name}-aws", region=settings.region, default_tags={"tags": tags})
        with_provider = pulumi.ResourceOptions(provider=provider)
        invoke = pulumi.InvokeOutputOptions(provider=provider)
        zones = aws.get_availability_zones_output(state="available", opts=invoke).names
        image_id = aws.ssm.get_parameter_output(name=config.UBUNTU_IMAGE_PARAMETER, opts=invoke).value

        network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                cidr=cloud.NETWORK_CIDR,
                public_subnet_cidr=cloud.PUBLIC_SUBNET_CIDR,
                worker_subnet_cidr=cloud.WORKER_SUBNET_CIDR,
                database_subnet_cidrs=cloud.DATABASE_SUBNET_CIDRS if settings.managed_database else (),
                zones=zones,
                allow_cidrs=settings.allow_cidrs,
                ssh_cidrs=settings.ssh_cidrs,
                tags=tags,
                nat=settings.workers > 0,
                acme=bool(settings.domain),
            ),
            opts=with_provider,
        )
        storage = Storage(
            f"{name}-storage", StorageArgs(bucket_name=config.bucket_name(settings), tags=tags), opts=with_provider
        )
        build = cloud.require_build(settings)
        shipped = [storage.put_file(f"{name}-build-wheel", build.object_key("wheel"), build.wheel_path),
                   storage.put_file(f"{name}-build-constraints", build.object_key("constraints"),
                                    build.constraints_path)]

        values: dict[str, pulumi.Input[str]] = dict(cloud.stored_secrets(settings))
        database = None
        if settings.managed_database:
            database = Database(
                f"{name}-db",
                DatabaseArgs(
                    subnet_ids=[subnet.id for subnet in network.database_subnets],
                    vpc_id=network.vpc.id,
                    client_group_id=network.node_group.id,
                    password=settings.secrets.database_password,
                    tags=tags,
                    instance_class=config.DATABASE_INSTANCE_CLASS,
                ),
                opts=with_provider,
            )
            values[cloud.DATABASE_URL] = database.url
        secrets = SecretStore(
            f"{name}-secrets",
            SecretStoreArgs(prefix=config.secret_prefix(settings), values=values, tags=tags),
            opts=with_provider,
        )

        node_identity = MachineIdentity(
            f"{name}-node",
            MachineIdentityArgs(
                policies={
                    "secrets": secrets.read_policy(*cloud.role_secret_keys("node", settings)),
                    "bucket": storage.access_policy(),
                },
                tags=tags,
            ),
            opts=with_provider,
        )
        worker_identity = MachineIdentity(
            f"{name}-worker",
            MachineIdentityArgs(
                policies={
                    "secrets": secrets.read_policy(*cloud.role_secret_keys("worker", settings)),
                    # the build it installs, and the tensors its jobs read
                    "bucket": storage.access_policy(write=False),
                },
                tags=tags,
            ),
            opts=with_provider,
        )

        node = Node(
            f"{name}-node",
            ServerArgs(
                subnet_id=network.public_subnet.id,
                security_group_id=network.node_group.id,
                private_ip=cloud.NODE_PRIVATE_IP,
                image_id=image_id,
                instance_type=config.node_instance_type(settings),
                instance_profile=node_identity.profile.name,
                user_data=lambda address: user_data_output("node", settings, address),
                disk_gb=settings.disk_gb,
                tags=tags,
                depends_on=[network.gateway, *shipped],
            ),
            opts=with_provider,
        )
        workers = WorkerPool(
            f"{name}-workers",
            WorkerPoolArgs(
                count=settings.workers,
                subnet_id=network.worker_subnet.id,
                security_group_id=network.worker_group.id,
                image_id=image_id,
                instance_type=config.worker_instance_type(settings),
                instance_profile_arn=worker_identity.profile.arn,
                user_data=user_data("worker", settings),
                disk_gb=settings.disk_gb,
                tags=tags,
                depends_on=[*network.worker_egress, *shipped],
            ),
            opts=with_provider,
        )

        pulumi.export("url", node.public_ip.apply(lambda ip: f"https://{settings.domain or ip}"))
        pulumi.export("node_public_ip", node.public_ip)
        pulumi.export("bucket", storage.bucket.bucket)
        pulumi.export("tls_root_object", config.CA_OBJECT)
        pulumi.export("workers", settings.workers)
        pulumi.export("worker_group", workers.group.name)
        pulumi.export("region", settings.region)
        pulumi.export("node_instance_id", node.instance.id)
        pulumi.export("gridctl_version", build.version)
        pulumi.export("gridctl_wheel_sha256", build.wheel_sha256)
        if database is not None:
            pulumi.export("database_address", database.instance.address)

        if settings.network:
            network_identity = MachineIdentity(
                f"{name}-network",
                MachineIdentityArgs(
                    policies={
                        "secrets": secrets.read_policy(*cloud.role_secret_keys("network", settings)),
                        "bucket": storage.access_policy(prefix=config.NETWORK_CA_OBJECT),
                    },
                    tags=tags,
                ),
                opts=with_provider,
            )
            service = NetworkService(
                f"{name}-network",
                ServerArgs(
                    subnet_id=network.public_subnet.id,
                    security_group_id=network.network_service_group.id,
                    private_ip=cloud.NETWORK_PRIVATE_IP,
                    image_id=image_id,
                    instance_type=config.NETWORK_INSTANCE_TYPE,
                    instance_profile=network_identity.profile.name,
                    user_data=lambda address: user_data_output("network", settings, address),
                    disk_gb=20,
                    tags=tags,
                    depends_on=[network.gateway, *shipped],
                ),
                opts=with_provider,
            )
            pulumi.export("network_url", service.public_ip.apply(lambda ip: f"https://{ip}"))
            # The Node joins its Network (deploy does it) and the Network reads the Node's statistics: each
            # machine's 443 also accepts the other's public address, and nothing more.
            network.allow_https_from_peer("network-https-from-node", network.network_service_group, node.public_ip,
                                          "Network API over TLS from its Node (join, catalogue pushes)")
            network.allow_https_from_peer("node-https-from-network", network.node_group, service.public_ip,
                                          "API over TLS from the Network (its reads of the Node's statistics)")

    return program


def offline_calls(settings: CloudSettings) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Answers to the program's data sources when it runs under mocks."""
    return {
        "aws:index/getAvailabilityZones:getAvailabilityZones": lambda args: {
            "names": [f"{settings.region}a", f"{settings.region}b"],
            "id": settings.region,
        },
        "aws:ssm/getParameter:getParameter": lambda args: {
            "name": args.get("name"),
            "value": "ami-00000000000000000",
            "type": "String",
            "id": args.get("name"),
        },
    }


def offline_outputs(resource_type: str, name: str, inputs: Any) -> dict[str, Any]:
    """Outputs AWS would compute, so policies naming ARNs read as they would."""
    service = resource_type.split(":")[1].split("/")[0]
    computed: dict[str, Any] = {"arn": f"arn:aws:{service}:offline:000000000000:{name}"}
    if resource_type == "aws:ec2/eip:Eip":
        computed["publicIp"] = cloud.offline_public_address(name)
    if resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        computed["latestVersion"] = 1
    return computed


def plan(settings: CloudSettings, *, redact: bool = True) -> list[DeclaredResource]:
    """The resources ``build(settings)`` declares, computed offline."""
    return plan_offline(
        build(settings),
        project="gridctl",
        stack=settings.name,
        calls=offline_calls(settings),
        secret_values=settings.secrets.values(),
        redact=redact,
        computed=offline_outputs,
    )
