"""The Azure Pulumi program of a deployment, and its offline plan.

``build(settings)`` returns the inline program the StackRunner hands to the Automation API;
``plan(settings)`` runs the same program under Pulumi's mocks. Imports Pulumi: only the runner and plan
paths import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi_azure_native import authorization, resources

from providers import cloud
from providers.azure import config
from providers.azure.components import (
    Database,
    DatabaseArgs,
    Identities,
    IdentitiesArgs,
    Location,
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
    return cloud.machine_context(
        settings,
        public_address=public_address,
        role=role,
        cloud=config.CLOUD,
        secrets=cloud.role_secrets(role, settings, lambda key: key),
        bucket=config.CONTAINER,
        storage_account=config.storage_account(settings),
        vault_url=config.vault_url(settings),
        ca_object=config.NETWORK_CA_OBJECT if role == "network" else config.CA_OBJECT,
        # adlfs: the container as az://, the account (and the managed identity, anon false) as options
        object_store_url=f"az://{config.CONTAINER}",
        object_store_options={"account_name": config.storage_account(settings), "anon": False},
        identity_note="the VM's user-assigned managed identity",
    )


def user_data(role: str, settings: CloudSettings, public_address: str = "") -> str:
    """The cloud-init a ``role`` machine boots with, rendered from ``templates/cloud-init/<role>.yaml.j2``."""
    return render(f"cloud-init/{role}.yaml.j2", **machine_context(role, settings, public_address))


def user_data_output(role: str, settings: CloudSettings, public_address: pulumi.Input[str]) -> pulumi.Output[str]:
    """The user-data of a machine whose public address the program allocates (Caddy serves on it)."""
    return pulumi.Output.from_input(public_address).apply(lambda address: user_data(role, settings, address))


def _admin_key(settings: CloudSettings) -> str:
    key = settings.ssh_public_key or settings.admin_public_key
    if not key:
        raise ValueError(
            "Azure needs an SSH public key on every Linux VM: give --ssh-key, or let the provider "
            "generate a throwaway one (admin_public_key)"
        )
    return key


def build(settings: CloudSettings) -> Callable[[], None]:
    """The inline Pulumi program for ``settings``."""

    def program() -> None:
        name = settings.name
        tags = settings.labels
        client = authorization.get_client_config_output()
        group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=config.resource_group(settings), location=settings.region, tags=tags
        )
        where = Location(resource_group=group.name, location=settings.region, tags=tags)
        roles = ["node", "worker"] + (["network"] if settings.network else [])

        # The machines' public addresses come first: with --network the subnet's NSG lets each of the Node and
        # the Network machine reach the other's 443 at its public address, and nothing more.
        node = Node(f"{name}-node", where)
        service = NetworkService(f"{name}-network", where) if settings.network else None
        peer_https: list[tuple[str, pulumi.Input[str], str]] = []
        if service is not None:
            peer_https = [("network-https-from-node", node.public_ip, cloud.NETWORK_PRIVATE_IP),
                          ("node-https-from-network", service.public_ip, cloud.NODE_PRIVATE_IP)]

        network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                where=where,
                cidr=cloud.NETWORK_CIDR,
                public_subnet_cidr=cloud.PUBLIC_SUBNET_CIDR,
                worker_subnet_cidr=cloud.WORKER_SUBNET_CIDR,
                database_subnet_cidr=cloud.DATABASE_SUBNET_CIDRS[0] if settings.managed_database else None,
                node_ip=cloud.NODE_PRIVATE_IP,
                allow_cidrs=settings.allow_cidrs,
                ssh_cidrs=settings.ssh_cidrs,
                nat=settings.workers > 0,
                acme=bool(settings.domain),
                peer_https=peer_https,
            ),
        )
        identities = Identities(f"{name}-identity", IdentitiesArgs(where=where, roles=roles))
        principals = {role: identity.principal_id for role, identity in identities.by_role.items()}
        writers = [principals["node"]] + ([principals["network"]] if settings.network else [])
        storage = Storage(
            f"{name}-storage",
            StorageArgs(
                where=where,
                account_name=config.storage_account(settings),
                container=config.CONTAINER,
                subscription_id=client.subscription_id,
                writers=writers,
                readers=[client.object_id],
                machine_readers=[principals["worker"]],
            ),
        )
        build = cloud.require_build(settings)
        shipped = [storage.put_file(f"{name}-build-wheel", build.object_key("wheel"), build.wheel_path, group.name),
                   storage.put_file(f"{name}-build-constraints", build.object_key("constraints"),
                                    build.constraints_path, group.name)]

        values: dict[str, pulumi.Input[str]] = dict(cloud.stored_secrets(settings))
        database = None
        if settings.managed_database:
            assert network.database_subnet is not None
            database = Database(
                f"{name}-db",
                DatabaseArgs(
                    where=where,
                    server_name=config.database_server(settings),
                    subnet_id=network.database_subnet.id,
                    vnet_id=network.vnet.id,
                    password=settings.secrets.database_password,
                    sku=config.DATABASE_SKU,
                ),
            )
            values[cloud.DATABASE_URL] = database.url
        secret_store = SecretStore(
            f"{name}-secrets",
            SecretStoreArgs(
                where=where,
                vault_name=config.vault_name(settings),
                tenant_id=client.tenant_id,
                subscription_id=client.subscription_id,
                values=values,
                readers={role: (principals[role], cloud.role_secret_keys(role, settings)) for role in roles},
            ),
        )

        def server_args(role: str, private_ip: str, vm_size: str, disk_gb: int) -> ServerArgs:
            return ServerArgs(
                where=where,
                subnet_id=network.public_subnet.id,
                private_ip=private_ip,
                vm_size=vm_size,
                image=config.IMAGE,
                identity_id=identities.by_role[role].id,
                admin_user=config.ADMIN_USER,
                admin_public_key=_admin_key(settings),
                user_data=lambda address: user_data_output(role, settings, address),
                disk_gb=disk_gb,
                depends_on=[*secret_store.grants, *storage.grants, *shipped],
            )

        node.boot(server_args("node", cloud.NODE_PRIVATE_IP, config.node_vm_size(settings), settings.disk_gb))
        workers = WorkerPool(
            f"{name}-workers",
            WorkerPoolArgs(
                where=where,
                count=settings.workers,
                subnet_id=network.worker_subnet.id,
                vm_size=config.worker_vm_size(settings),
                image=config.IMAGE,
                identity_id=identities.by_role["worker"].id,
                admin_user=config.ADMIN_USER,
                admin_public_key=_admin_key(settings),
                user_data=user_data("worker", settings),
                disk_gb=settings.disk_gb,
                depends_on=[*secret_store.grants, *storage.grants, *shipped],
            ),
        )

        pulumi.export("url", node.public_ip.apply(lambda ip: f"https://{settings.domain or ip}"))
        pulumi.export("node_public_ip", node.public_ip)
        pulumi.export("storage_account", storage.account.name)
        pulumi.export("bucket", config.CONTAINER)
        pulumi.export("tls_root_object", config.CA_OBJECT)
        pulumi.export("workers", settings.workers)
        pulumi.export("worker_group", workers.scale_set.name)
        pulumi.export("region", settings.region)
        pulumi.export("subscription_id", client.subscription_id)
        pulumi.export("resource_group", group.name)
        pulumi.export("node_vm", node.vm.name)
        pulumi.export("gridctl_version", build.version)
        pulumi.export("gridctl_wheel_sha256", build.wheel_sha256)
        if database is not None:
            pulumi.export("database_address", database.server.fully_qualified_domain_name)
        if service is not None:
            service.boot(server_args("network", cloud.NETWORK_PRIVATE_IP, config.NETWORK_VM_SIZE, 30))
            pulumi.export("network_url", service.public_ip.apply(lambda ip: f"https://{ip}"))

    return program


def offline_calls(settings: CloudSettings) -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Answers to the program's data sources when it runs under mocks."""
    return {
        "azure-native:authorization:getClientConfig": lambda args: {
            "clientId": "00000000-0000-0000-0000-000000000001",
            "objectId": "00000000-0000-0000-0000-000000000002",
            "subscriptionId": "00000000-0000-0000-0000-000000000003",
            "tenantId": "00000000-0000-0000-0000-000000000004",
        },
    }


def offline_outputs(resource_type: str, name: str, inputs: Any) -> dict[str, Any]:
    """Outputs Azure would compute: identities' principal ids, named in the role assignments."""
    if resource_type == "azure-native:managedidentity:UserAssignedIdentity":
        return {"principalId": f"principal-{name}"}
    if resource_type == "azure-native:network:PublicIPAddress":
        return {"ipAddress": cloud.offline_public_address(name)}
    return {}


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
