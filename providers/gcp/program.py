"""The GCP Pulumi program of a deployment, and its offline plan.

``build(settings)`` returns the inline program the StackRunner hands to the Automation API;
``plan(settings)`` runs the same program under Pulumi's mocks. Imports Pulumi: only the runner and plan
paths import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_gcp as gcp

from providers import cloud
from providers.cloud import CloudSettings
from providers.gcp import config
from providers.gcp.components import (
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
from providers.stack import DeclaredResource
from providers.stack import plan as plan_offline
from templates.render import render


def _project(settings: CloudSettings) -> str:
    if not settings.project:
        raise ValueError("a GCP deployment needs a project (--project or GOOGLE_CLOUD_PROJECT)")
    return settings.project


def machine_context(role: str, settings: CloudSettings, public_address: str = "") -> dict[str, Any]:
    return cloud.machine_context(
        settings,
        public_address=public_address,
        role=role,
        cloud=config.CLOUD,
        secrets=cloud.role_secrets(role, settings, lambda key: config.secret_id(settings, key)),
        bucket=config.bucket_name(settings),
        project=_project(settings),
        ca_object=config.NETWORK_CA_OBJECT if role == "network" else config.CA_OBJECT,
        object_store_url=f"gs://{config.bucket_name(settings)}",
        identity_note="the instance's service account",
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
        labels = settings.labels
        project = _project(settings)
        provider = gcp.Provider(f"{name}-gcp", project=project, region=settings.region, default_labels=labels)
        with_provider = pulumi.ResourceOptions(provider=provider)
        zone = gcp.compute.get_zones_output(
            region=settings.region, status="UP", opts=pulumi.InvokeOutputOptions(provider=provider)
        ).names[0]
        tag = lambda role: config.network_tag(settings, role)  # noqa: E731

        network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                public_subnet_cidr=cloud.PUBLIC_SUBNET_CIDR,
                worker_subnet_cidr=cloud.WORKER_SUBNET_CIDR,
                region=settings.region,
                allow_cidrs=settings.allow_cidrs,
                ssh_cidrs=settings.ssh_cidrs,
                node_tag=tag("node"),
                worker_tag=tag("worker"),
                network_service_tag=tag("network"),
                private_services=settings.managed_database,
                services_range=config.SERVICES_RANGE,
                labels=labels,
                acme=bool(settings.domain),
                nat=settings.workers > 0,
            ),
            opts=with_provider,
        )
        storage = Storage(
            f"{name}-storage",
            StorageArgs(bucket_name=config.bucket_name(settings), location=settings.region, labels=labels),
            opts=with_provider,
        )
        build = cloud.require_build(settings)
        shipped = [storage.put_file(f"{name}-build-wheel", build.object_key("wheel"), build.wheel_path),
                   storage.put_file(f"{name}-build-constraints", build.object_key("constraints"),
                                    build.constraints_path)]

        values: dict[str, pulumi.Input[str]] = dict(cloud.stored_secrets(settings))
        database = None
        if settings.managed_database:
            assert network.services_connection is not None
            database = Database(
                f"{name}-db",
                DatabaseArgs(
                    region=settings.region,
                    network_id=network.network.id,
                    password=settings.secrets.database_password,
                    labels=labels,
                    tier=config.DATABASE_TIER,
                    depends_on=[network.services_connection],
                ),
                opts=with_provider,
            )
            values[cloud.DATABASE_URL] = database.url
        secrets = SecretStore(
            f"{name}-secrets",
            SecretStoreArgs(ids={key: config.secret_id(settings, key) for key in values}, values=values, labels=labels),
            opts=with_provider,
        )

        identities: dict[str, MachineIdentity] = {}
        roles = ["node", "worker"] + (["network"] if settings.network else [])
        for role in roles:
            identity = MachineIdentity(
                f"{name}-{role}",
                MachineIdentityArgs(account_id=config.service_account_id(settings, role),
                                    description=f"gridctl {name} {role}"),
                opts=with_provider,
            )
            secrets.grant(f"{name}-{role}", identity.member, *cloud.role_secret_keys(role, settings))
            identities[role] = identity
        storage.grant(f"{name}-node", identities["node"].member)
        # Workers read the build they install and the tensors their jobs use; they write nothing.
        storage.grant(f"{name}-worker", identities["worker"].member, role="roles/storage.objectViewer")

        node = Node(
            f"{name}-node",
            ServerArgs(
                zone=zone,
                region=settings.region,
                subnet_id=network.public_subnet.id,
                private_ip=cloud.NODE_PRIVATE_IP,
                machine_type=config.node_machine_type(settings),
                image=config.IMAGE,
                service_account=identities["node"].email,
                user_data=lambda address: user_data_output("node", settings, address),
                disk_gb=settings.disk_gb,
                network_tag=tag("node"),
                labels=labels,
                depends_on=shipped,
            ),
            opts=with_provider,
        )
        workers = WorkerPool(
            f"{name}-workers",
            WorkerPoolArgs(
                count=settings.workers,
                zone=zone,
                region=settings.region,
                subnet_id=network.worker_subnet.id,
                machine_type=config.worker_machine_type(settings),
                image=config.IMAGE,
                service_account=identities["worker"].email,
                user_data=user_data("worker", settings),
                disk_gb=settings.disk_gb,
                network_tag=tag("worker"),
                labels=labels,
                depends_on=[*network.worker_egress, *shipped],
            ),
            opts=with_provider,
        )

        pulumi.export("url", node.public_ip.apply(lambda ip: f"https://{settings.domain or ip}"))
        pulumi.export("node_public_ip", node.public_ip)
        pulumi.export("bucket", storage.bucket.name)
        pulumi.export("tls_root_object", config.CA_OBJECT)
        pulumi.export("workers", settings.workers)
        pulumi.export("worker_group", workers.group.name)
        pulumi.export("region", settings.region)
        pulumi.export("project", project)
        pulumi.export("zone", zone)
        pulumi.export("node_instance", node.instance.name)
        pulumi.export("gridctl_version", build.version)
        pulumi.export("gridctl_wheel_sha256", build.wheel_sha256)
        if database is not None:
            pulumi.export("database_address", database.instance.private_ip_address)

        if settings.network:
            storage.grant(f"{name}-network", identities["network"].member)
            service = NetworkService(
                f"{name}-network",
                ServerArgs(
                    zone=zone,
                    region=settings.region,
                    subnet_id=network.public_subnet.id,
                    private_ip=cloud.NETWORK_PRIVATE_IP,
                    machine_type=config.NETWORK_MACHINE_TYPE,
                    image=config.IMAGE,
                    service_account=identities["network"].email,
                    user_data=lambda address: user_data_output("network", settings, address),
                    disk_gb=20,
                    network_tag=tag("network"),
                    labels=labels,
                    depends_on=shipped,
                ),
                opts=with_provider,
            )
            pulumi.export("network_url", service.public_ip.apply(lambda ip: f"https://{ip}"))
            # The Node joins its Network (deploy does it) and the Network reads the Node's statistics: each
            # machine's 443 also accepts the other's external address, and nothing more.
            network.allow_https_from_peer("network-https-from-node", tag("network"), node.public_ip,
                                          "the Network's API over TLS from its Node")
            network.allow_https_from_peer("node-https-from-network", tag("node"), service.public_ip,
                                          "the Node's API over TLS from its Network")

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
    return plan_offline(
        build(settings),
        project="gridctl",
        stack=settings.name,
        calls=offline_calls(settings),
        secret_values=settings.secrets.values(),
        redact=redact,
        computed=offline_outputs(settings),
    )
