"""The AWS Pulumi program of a deployment: a VPC with a NAT gateway for the Workers, an S3 bucket, Secrets
Manager, an IAM role per machine, the Node's and the Network's instances and the Workers' Auto Scaling group.
What every cloud's program shares is in providers/cloud_program.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from providers import cloud, cloud_program
from providers.aws import components, config
from providers.cloud import CloudSettings
from providers.stack import DeclaredResource


def machine_context(role: str, settings: CloudSettings, public_address: str = "") -> dict[str, Any]:
    prefix = config.secret_prefix(settings)
    return cloud.machine_context(
        settings, cloud=config.CLOUD, role=role, secret_reference=lambda key: f"{prefix}/{key}",
        bucket=config.bucket_name(settings), public_address=public_address, region=settings.region,
        object_store_url=f"s3://{config.bucket_name(settings)}", identity_note="the instance profile's IAM role",
    )


CLOUD_INIT = cloud_program.CloudInit(machine_context)


def build(settings: CloudSettings) -> Callable[[], None]:
    """The inline Pulumi program for ``settings``."""

    def program() -> None:
        name, tags = settings.name, settings.labels
        provider = aws.Provider(f"{name}-aws", region=settings.region, default_tags={"tags": tags})
        with_provider = pulumi.ResourceOptions(provider=provider)
        invoke = pulumi.InvokeOutputOptions(provider=provider)
        zones = aws.get_availability_zones_output(state="available", opts=invoke).names
        image_id = aws.ssm.get_parameter_output(name=config.UBUNTU_IMAGE_PARAMETER, opts=invoke).value

        network = components.PrivateNetwork(
            f"{name}-net",
            components.PrivateNetworkArgs(
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
        storage = components.Storage(
            f"{name}-storage", components.StorageArgs(bucket_name=config.bucket_name(settings), tags=tags),
            opts=with_provider,
        )
        shipped = cloud_program.ship_build(settings, storage.put_file)

        database = None
        if settings.managed_database:
            database = components.Database(
                f"{name}-db",
                components.DatabaseArgs(
                    subnet_ids=[subnet.id for subnet in network.database_subnets], vpc_id=network.vpc.id,
                    client_group_id=network.node_group.id, password=settings.secrets.database_password, tags=tags,
                    instance_class=config.DATABASE_INSTANCE_CLASS,
                ),
                opts=with_provider,
            )
        values = cloud_program.stored_values(settings, database.url if database else None)
        secrets = components.SecretStore(
            f"{name}-secrets",
            components.SecretStoreArgs(prefix=config.secret_prefix(settings), values=values, tags=tags),
            opts=with_provider,
        )

        # Each machine's IAM role reads its own secrets; Workers only read the bucket (the build they install,
        # the tensors their jobs read), the Network machine only writes its TLS root there.
        bucket_access = {"node": storage.access_policy, "worker": lambda: storage.access_policy(write=False),
                         "network": lambda: storage.access_policy(prefix=cloud.NETWORK_CA_OBJECT)}
        identities = {
            role: components.MachineIdentity(
                f"{name}-{role}",
                components.MachineIdentityArgs(policies={
                    "secrets": secrets.read_policy(*cloud.role_secret_keys(role, settings)),
                    "bucket": bucket_access[role](),
                }, tags=tags),
                opts=with_provider,
            )
            for role in cloud.roles(settings)
        }

        def server_args(role: str, private_ip: str, security_group: aws.ec2.SecurityGroup, instance_type: str,
                        disk_gb: int) -> components.ServerArgs:
            return components.ServerArgs(
                subnet_id=network.public_subnet.id, security_group_id=security_group.id, private_ip=private_ip,
                image_id=image_id, instance_type=instance_type, instance_profile=identities[role].profile.name,
                user_data=CLOUD_INIT.server_user_data(role, settings), disk_gb=disk_gb, tags=tags,
                depends_on=[network.gateway, *shipped],
            )

        node = components.Node(
            f"{name}-node",
            server_args("node", cloud.NODE_PRIVATE_IP, network.node_group,
                        settings.node_instance_type or config.NODE_INSTANCE_TYPE, settings.disk_gb),
            opts=with_provider,
        )
        workers = components.WorkerPool(
            f"{name}-workers",
            components.WorkerPoolArgs(
                count=settings.workers,
                subnet_id=network.worker_subnet.id,
                security_group_id=network.worker_group.id,
                image_id=image_id,
                instance_type=settings.worker_instance_type or config.WORKER_INSTANCE_TYPE,
                instance_profile_arn=identities["worker"].profile.arn,
                user_data=CLOUD_INIT.user_data("worker", settings),
                disk_gb=settings.disk_gb,
                tags=tags,
                depends_on=[*network.worker_egress, *shipped],
            ),
            opts=with_provider,
        )

        service = None
        if settings.network:
            service = components.NetworkService(
                f"{name}-network",
                server_args("network", cloud.NETWORK_PRIVATE_IP, network.network_service_group,
                            config.NETWORK_INSTANCE_TYPE, 20),
                opts=with_provider,
            )
            # The Node joins its Network (deploy does it) and the Network reads the Node's statistics: each
            # machine's 443 also accepts the other's public address, and nothing more.
            network.allow_https_from_peer("network-https-from-node", network.network_service_group, node.public_ip,
                                          "Network API over TLS from its Node (join, catalogue pushes)")
            network.allow_https_from_peer("node-https-from-network", network.node_group, service.public_ip,
                                          "API over TLS from the Network (its reads of the Node's statistics)")

        cloud_program.export_outputs(
            settings, node_public_ip=node.public_ip, bucket=storage.bucket.bucket, worker_group=workers.group.name,
            database_address=database.instance.address if database else None,
            network_public_ip=service.public_ip if service else None, node_instance_id=node.instance.id,
        )

    return program


def offline_calls(settings: CloudSettings) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Answers to the program's data sources when it runs under mocks."""
    return {
        "aws:ssm/getParameter:getParameter": lambda args: {
            "name": args.get("name"),
            "value": "ami-00000000000000000",
            "type": "String",
            "id": args.get("name"),
        },
        "aws:index/getAvailabilityZones:getAvailabilityZones": lambda args: {
            "names": [f"{settings.region}a", f"{settings.region}b"],
            "id": settings.region,
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
    return cloud_program.offline_plan(build(settings), settings, calls=offline_calls(settings),
                                      computed=offline_outputs, redact=redact)
