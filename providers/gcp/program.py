"""The GCP Pulumi program of a deployment: a VPC network with Cloud NAT for the Workers, a Cloud Storage bucket,
Secret Manager, a service account per machine, the Node's and the Network's instances and the Workers' managed
instance group. What every cloud's program shares is in providers/cloud_program.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_gcp as gcp

from providers import cloud, cloud_program
from providers.cloud import CloudSettings
from providers.gcp import components, config
from providers.stack import DeclaredResource


def _project(settings: CloudSettings) -> str:
    if not settings.project:
        raise ValueError("a GCP deployment needs a project (--project or GOOGLE_CLOUD_PROJECT)")
    return settings.project


def machine_context(role: str, settings: CloudSettings, public_address: str = "") -> dict[str, Any]:
    return cloud.machine_context(
        settings, cloud=config.CLOUD, role=role, secret_reference=lambda key: config.secret_id(settings, key),
        bucket=config.bucket_name(settings), public_address=public_address, project=_project(settings),
        object_store_url=f"gs://{config.bucket_name(settings)}", identity_note="the instance's service account",
    )


CLOUD_INIT = cloud_program.CloudInit(machine_context)


def build(settings: CloudSettings) -> Callable[[], None]:
    """The inline Pulumi program for ``settings``."""

    def program() -> None:
        name, labels = settings.name, settings.labels
        project = _project(settings)
        provider = gcp.Provider(f"{name}-gcp", project=project, region=settings.region, default_labels=labels)
        with_provider = pulumi.ResourceOptions(provider=provider)
        zone = gcp.compute.get_zones_output(
            region=settings.region, status="UP", opts=pulumi.InvokeOutputOptions(provider=provider)
        ).names[0]
        tag = lambda role: config.network_tag(settings, role)  # noqa: E731

        network = components.PrivateNetwork(
            f"{name}-net",
            components.PrivateNetworkArgs(
                public_subnet_cidr=cloud.PUBLIC_SUBNET_CIDR, worker_subnet_cidr=cloud.WORKER_SUBNET_CIDR,
                region=settings.region, allow_cidrs=settings.allow_cidrs, ssh_cidrs=settings.ssh_cidrs,
                node_tag=tag("node"), worker_tag=tag("worker"), network_service_tag=tag("network"),
                private_services=settings.managed_database, services_range=config.SERVICES_RANGE, labels=labels,
                acme=bool(settings.domain), nat=settings.workers > 0,
            ),
            opts=with_provider,
        )
        storage = components.Storage(
            f"{name}-storage",
            components.StorageArgs(bucket_name=config.bucket_name(settings), location=settings.region, labels=labels),
            opts=with_provider,
        )
        shipped = cloud_program.ship_build(settings, storage.put_file)

        database = None
        if settings.managed_database:
            assert network.services_connection is not None
            database = components.Database(
                f"{name}-db",
                components.DatabaseArgs(
                    region=settings.region, network_id=network.network.id,
                    password=settings.secrets.database_password, labels=labels, tier=config.DATABASE_TIER,
                    depends_on=[network.services_connection],
                ),
                opts=with_provider,
            )
        values = cloud_program.stored_values(settings, database.url if database else None)
        secrets = components.SecretStore(
            f"{name}-secrets",
            components.SecretStoreArgs(ids={key: config.secret_id(settings, key) for key in values}, values=values,
                                       labels=labels),
            opts=with_provider,
        )

        identities: dict[str, components.MachineIdentity] = {}
        for role in cloud.roles(settings):
            identity = components.MachineIdentity(
                f"{name}-{role}",
                components.MachineIdentityArgs(account_id=config.service_account_id(settings, role),
                                               description=f"gridctl {name} {role}"),
                opts=with_provider,
            )
            secrets.grant(f"{name}-{role}", identity.member, *cloud.role_secret_keys(role, settings))
            identities[role] = identity
        storage.grant(f"{name}-node", identities["node"].member)
        # Workers read the build they install and the tensors their jobs use; they write nothing.
        storage.grant(f"{name}-worker", identities["worker"].member, role="roles/storage.objectViewer")

        def server_args(role: str, private_ip: str, machine_type: str, disk_gb: int) -> components.ServerArgs:
            return components.ServerArgs(
                zone=zone, region=settings.region, subnet_id=network.public_subnet.id, private_ip=private_ip,
                machine_type=machine_type, image=config.IMAGE, service_account=identities[role].email,
                user_data=CLOUD_INIT.server_user_data(role, settings), disk_gb=disk_gb, network_tag=tag(role),
                labels=labels, depends_on=shipped,
            )

        node = components.Node(
            f"{name}-node",
            server_args("node", cloud.NODE_PRIVATE_IP, settings.node_instance_type or config.NODE_MACHINE_TYPE,
                        settings.disk_gb),
            opts=with_provider,
        )
        workers = components.WorkerPool(
            f"{name}-workers",
            components.WorkerPoolArgs(
                count=settings.workers,
                zone=zone,
                region=settings.region,
                subnet_id=network.worker_subnet.id,
                machine_type=settings.worker_instance_type or config.WORKER_MACHINE_TYPE,
                image=config.IMAGE,
                service_account=identities["worker"].email,
                user_data=CLOUD_INIT.user_data("worker", settings),
                disk_gb=settings.disk_gb,
                network_tag=tag("worker"),
                labels=labels,
                depends_on=[*network.worker_egress, *shipped],
            ),
            opts=with_provider,
        )

        service = None
        if settings.network:
            storage.grant(f"{name}-network", identities["network"].member)
            service = components.NetworkService(
                f"{name}-network",
                server_args("network", cloud.NETWORK_PRIVATE_IP, config.NETWORK_MACHINE_TYPE, 20),
                opts=with_provider,
            )
            # The Node joins its Network (deploy does it) and the Network reads the Node's statistics: each
            # machine's 443 also accepts the other's external address, and nothing more.
            network.allow_https_from_peer("network-https-from-node", tag("network"), node.public_ip,
                                          "the Network's API over TLS from its Node")
            network.allow_https_from_peer("node-https-from-network", tag("node"), service.public_ip,
                                          "the Node's API over TLS from its Network")

        cloud_program.export_outputs(
            settings, node_public_ip=node.public_ip, bucket=storage.bucket.name, worker_group=workers.group.name,
            database_address=database.instance.private_ip_address if database else None,
            network_public_ip=service.public_ip if service else None, project=project, zone=zone,
            node_instance=node.instance.name,
        )

    return program


def offline_calls(settings: CloudSettings) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Answers to the program's data sources when it runs under mocks."""
    return {
        "gcp:compute/getZones:getZones": lambda args: {
            "names": [f"{settings.region}-b", f"{settings.region}-c"],
            "id": settings.region,
            "project": settings.project,
            "region": settings.region,
        },
    }


def offline_outputs(settings: CloudSettings) -> Callable[[str, str, Any], dict[str, Any]]:
    """Outputs GCP would compute, so grants naming service accounts read as they would."""

    def computed(resource_type: str, name: str, inputs: Any) -> dict[str, Any]:
        if resource_type == "gcp:compute/address:Address":
            return {"address": cloud.offline_public_address(name)}
        if resource_type == "gcp:serviceaccount/account:Account":
            return {"email": f"{inputs['accountId']}@{settings.project}.iam.gserviceaccount.com"}
        return (
            {"selfLinkUnique": f"offline/{name}"} if resource_type.endswith("instanceTemplate:InstanceTemplate") else {}
        )

    return computed


def plan(settings: CloudSettings, *, redact: bool = True) -> list[DeclaredResource]:
    """The resources ``build(settings)`` declares, computed offline."""
    return cloud_program.offline_plan(build(settings), settings, calls=offline_calls(settings),
                                      computed=offline_outputs(settings), redact=redact)
