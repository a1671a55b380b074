"""The Azure Pulumi program of a deployment: a resource group with a virtual network and a NAT gateway for the
Workers, a storage account, Key Vault, a managed identity per machine, the Node's and the Network's VMs and the
Workers' scale set. What every cloud's program shares is in providers/cloud_program.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi_azure_native import authorization, resources

from providers import cloud, cloud_program
from providers.azure import components, config
from providers.cloud import CloudSettings
from providers.stack import DeclaredResource


def machine_context(role: str, settings: CloudSettings, public_address: str = "") -> dict[str, Any]:
    return cloud.machine_context(
        settings, cloud=config.CLOUD, role=role, secret_reference=lambda key: key, bucket=config.CONTAINER,
        public_address=public_address, storage_account=config.storage_account(settings),
        vault_url=config.vault_url(settings),
        # adlfs: the container as az://, the account (and the managed identity, anon false) as options
        object_store_url=f"az://{config.CONTAINER}",
        object_store_options={"account_name": config.storage_account(settings), "anon": False},
        identity_note="the VM's user-assigned managed identity",
    )


CLOUD_INIT = cloud_program.CloudInit(machine_context)


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
        name, tags = settings.name, settings.labels
        client = authorization.get_client_config_output()
        group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=config.resource_group(settings), location=settings.region, tags=tags
        )
        where = components.Location(resource_group=group.name, location=settings.region, tags=tags)
        roles = cloud.roles(settings)

        # The machines' public addresses come first: with --network the subnet's NSG lets each of the Node and
        # the Network machine reach the other's 443 at its public address, and nothing more.
        node = components.Node(f"{name}-node", where)
        service = components.NetworkService(f"{name}-network", where) if settings.network else None
        peer_https: list[tuple[str, pulumi.Input[str], str]] = []
        if service is not None:
            peer_https = [("network-https-from-node", node.public_ip, cloud.NETWORK_PRIVATE_IP),
                          ("node-https-from-network", service.public_ip, cloud.NODE_PRIVATE_IP)]

        network = components.PrivateNetwork(
            f"{name}-net",
            components.PrivateNetworkArgs(
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
        identities = components.Identities(f"{name}-identity", components.IdentitiesArgs(where=where, roles=roles))
        principals = {role: identity.principal_id for role, identity in identities.by_role.items()}
        writers = [principals["node"]] + ([principals["network"]] if settings.network else [])
        storage = components.Storage(
            f"{name}-storage",
            components.StorageArgs(
                where=where,
                account_name=config.storage_account(settings),
                container=config.CONTAINER,
                subscription_id=client.subscription_id,
                writers=writers,
                readers=[client.object_id],
                machine_readers=[principals["worker"]],
            ),
        )
        shipped = cloud_program.ship_build(
            settings, lambda resource_name, key, path: storage.put_file(resource_name, key, path, group.name))

        database = None
        if settings.managed_database:
            assert network.database_subnet is not None
            database = components.Database(f"{name}-db", components.DatabaseArgs(
                where=where, server_name=config.database_server(settings), subnet_id=network.database_subnet.id,
                vnet_id=network.vnet.id, password=settings.secrets.database_password, sku=config.DATABASE_SKU,
            ))
        values = cloud_program.stored_values(settings, database.url if database else None)
        secret_store = components.SecretStore(
            f"{name}-secrets",
            components.SecretStoreArgs(
                where=where, vault_name=config.vault_name(settings), tenant_id=client.tenant_id,
                subscription_id=client.subscription_id, values=values,
                readers={role: (principals[role], cloud.role_secret_keys(role, settings)) for role in roles},
            ),
        )

        def server_args(role: str, private_ip: str, vm_size: str, disk_gb: int) -> components.ServerArgs:
            return components.ServerArgs(
                where=where, subnet_id=network.public_subnet.id, private_ip=private_ip, vm_size=vm_size,
                image=config.IMAGE, identity_id=identities.by_role[role].id, admin_user=config.ADMIN_USER,
                admin_public_key=_admin_key(settings), user_data=CLOUD_INIT.server_user_data(role, settings),
                disk_gb=disk_gb, depends_on=[*secret_store.grants, *storage.grants, *shipped],
            )

        node.boot(server_args("node", cloud.NODE_PRIVATE_IP, settings.node_instance_type or config.NODE_VM_SIZE,
                              settings.disk_gb))
        workers = components.WorkerPool(
            f"{name}-workers",
            components.WorkerPoolArgs(
                where=where,
                count=settings.workers,
                subnet_id=network.worker_subnet.id,
                vm_size=settings.worker_instance_type or config.WORKER_VM_SIZE,
                image=config.IMAGE,
                identity_id=identities.by_role["worker"].id,
                admin_user=config.ADMIN_USER,
                admin_public_key=_admin_key(settings),
                user_data=CLOUD_INIT.user_data("worker", settings),
                disk_gb=settings.disk_gb,
                depends_on=[*secret_store.grants, *storage.grants, *shipped],
            ),
        )

        if service is not None:
            service.boot(server_args("network", cloud.NETWORK_PRIVATE_IP, config.NETWORK_VM_SIZE, 30))
        cloud_program.export_outputs(
            settings, node_public_ip=node.public_ip, bucket=config.CONTAINER, worker_group=workers.scale_set.name,
            database_address=database.server.fully_qualified_domain_name if database else None,
            network_public_ip=service.public_ip if service else None, storage_account=storage.account.name,
            subscription_id=client.subscription_id, resource_group=group.name, node_vm=node.vm.name,
        )

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
    return cloud_program.offline_plan(build(settings), settings, calls=offline_calls(settings),
                                      computed=offline_outputs, redact=redact)
