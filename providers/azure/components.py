"""Azure components of a deployment: PrivateNetwork, SecretStore, Storage, Database, Node, WorkerPool,
NetworkService. Each is a ``ComponentResource`` with an args class; children are created with
``parent=self`` and named after the component; outputs are registered.

Imported only by ``program.py`` (and so only when a stack runs or a plan is made): it imports Pulumi.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import (
    authorization,
    compute,
    dbforpostgresql,
    keyvault,
    managedidentity,
    network,
    privatedns,
    storage,
)

from providers.azure import config
from providers.cloud import RAY_PORTS, RayPorts, host_cidr


def _role_definition(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/", subscription_id, "/providers/Microsoft.Authorization/roleDefinitions/", role
    )


def _ranges(ranges: Sequence[tuple[int, int]]) -> list[str]:
    return [f"{first}-{last}" for first, last in ranges]


@dataclass
class Location:
    resource_group: pulumi.Input[str]
    location: str
    tags: Mapping[str, str]


@dataclass
class PrivateNetworkArgs:
    where: Location
    cidr: str
    public_subnet_cidr: str
    worker_subnet_cidr: str
    database_subnet_cidr: str | None  # delegated to PostgreSQL flexible server; None: no managed database
    node_ip: str
    allow_cidrs: Sequence[str]
    ssh_cidrs: Sequence[str]
    ray_ports: RayPorts = RAY_PORTS
    nat: bool = True  # a NAT gateway (~$32/month) for the Workers' way out; none while there are no Workers
    acme: bool = False  # with --domain: port 80 open to everyone for the ACME HTTP-01 challenge
    # With --network: 443 from one machine's public address to another's private one (the Node and its Network
    # reach each other at their public addresses): (rule name, source public address, destination private address).
    peer_https: Sequence[tuple[str, pulumi.Input[str], str]] = ()


class PrivateNetwork(pulumi.ComponentResource):
    """A VNet with a subnet for the Node and the Network service and one for Workers (outbound through a NAT
    gateway only). NSGs: 443 from the allowed CIDRs, SSH only if asked, Ray ports only between the Node and
    the Workers, and an explicit deny of the rest of the VNet (Azure's default rule would allow it)."""

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        where = args.where
        common = {"resource_group_name": where.resource_group, "location": where.location, "tags": dict(where.tags)}
        ray = _ranges(args.ray_ports.ranges())

        def rule(
            rule_name: str, priority: int, ports: list[str], sources: Sequence[pulumi.Input[str]] | str,
            access: str = "Allow",
            destination: str = "*",
        ) -> dict:
            # A list of CIDRs goes in the plural field; a service tag (VirtualNetwork, Internet) only in the
            # singular one: Azure refuses a tag in the list (SecurityRuleParameterContainsUnsupportedValue).
            source = ({"source_address_prefix": sources} if isinstance(sources, str)
                      else {"source_address_prefixes": list(sources)})
            return {
                "name": rule_name,
                "priority": priority,
                "direction": "Inbound",
                "access": access,
                "protocol": "Tcp" if access == "Allow" else "*",
                "source_port_range": "*",
                "destination_port_ranges": ports,
                **source,
                "destination_address_prefix": destination,
            }

        node_rules = [rule(f"https-{i}", 100 + i, ["443"], [cidr]) for i, cidr in enumerate(args.allow_cidrs)]
        node_rules += [rule(f"ssh-{i}", 200 + i, ["22"], [cidr]) for i, cidr in enumerate(args.ssh_cidrs)]
        # The Node and the Network service share this subnet and NSG: what only the Node serves (ACME's port 80,
        # the Ray head) names the Node's address, so the Network's machine is reached on 443 (and SSH) only.
        node_only = f"{args.node_ip}/32"
        if args.acme:
            node_rules.append(rule("acme-http", 250, ["80"], "Internet", destination=node_only))
        for i, (peer_rule, source, destination) in enumerate(args.peer_https):
            node_rules.append(rule(peer_rule, 260 + i, ["443"], [pulumi.Output.from_input(source).apply(host_cidr)],
                                   destination=host_cidr(destination)))
        node_rules.append(rule("ray-from-workers", 300, ray, [args.worker_subnet_cidr], destination=node_only))
        node_rules.append(rule("deny-rest-of-vnet", 4000, ["0-65535"], "VirtualNetwork", access="Deny"))
        worker_rules = [
            rule("ray-from-node", 100, ray, [f"{args.node_ip}/32"]),
            rule("ray-between-workers", 110, ray, [args.worker_subnet_cidr]),
            rule("deny-rest-of-vnet", 4000, ["0-65535"], "VirtualNetwork", access="Deny"),
        ]
        self.node_nsg = network.NetworkSecurityGroup(
            f"{name}-node-nsg", security_rules=node_rules, **common, opts=child
        )
        self.worker_nsg = network.NetworkSecurityGroup(
            f"{name}-worker-nsg", security_rules=worker_rules, **common, opts=child
        )
        self.vnet = network.VirtualNetwork(
            f"{name}-vnet",
            address_space={"address_prefixes": [args.cidr]},
            **common,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        nat_gateway: dict | None = None
        if args.nat:
            nat_ip = network.PublicIPAddress(
                f"{name}-nat-ip", sku={"name": "Standard"}, public_ip_allocation_method="Static", **common, opts=child
            )
            nat = network.NatGateway(
                f"{name}-nat", sku={"name": "Standard"}, public_ip_addresses=[{"id": nat_ip.id}], **common, opts=child
            )
            nat_gateway = {"id": nat.id}
        in_vnet = {"resource_group_name": where.resource_group, "virtual_network_name": self.vnet.name}
        self.public_subnet = network.Subnet(
            f"{name}-public",
            address_prefix=args.public_subnet_cidr,
            network_security_group={"id": self.node_nsg.id},
            **in_vnet,
            opts=child,
        )
        self.worker_subnet = network.Subnet(
            f"{name}-workers",
            address_prefix=args.worker_subnet_cidr,
            network_security_group={"id": self.worker_nsg.id},
            nat_gateway=nat_gateway,
            default_outbound_access=False,
            **in_vnet,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_subnet]),
        )
        self.database_subnet: network.Subnet | None = None
        if args.database_subnet_cidr:
            self.database_subnet = network.Subnet(
                f"{name}-database",
                address_prefix=args.database_subnet_cidr,
                **in_vnet,
                delegations=[{"name": "postgres", "service_name": "Microsoft.DBforPostgreSQL/flexibleServers"}],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.worker_subnet]),
            )
        self.register_outputs(
            {"vnet": self.vnet.id, "public_subnet": self.public_subnet.id, "worker_subnet": self.worker_subnet.id}
        )


@dataclass
class IdentitiesArgs:
    where: Location
    roles: Sequence[str]


class Identities(pulumi.ComponentResource):
    """A user-assigned managed identity per kind of machine."""

    def __init__(self, name: str, args: IdentitiesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:Identities", name, None, opts)
        self.by_role = {
            role: managedidentity.UserAssignedIdentity(
                f"{name}-{role}",
                resource_group_name=args.where.resource_group,
                location=args.where.location,
                tags=dict(args.where.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in args.roles
        }
        self.register_outputs({role: identity.id for role, identity in self.by_role.items()})


@dataclass
class SecretStoreArgs:
    where: Location
    vault_name: str
    tenant_id: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    values: Mapping[str, pulumi.Input[str]]
    readers: Mapping[str, tuple[pulumi.Input[str], Sequence[str]]]  # role -> (principal id, secret keys)


class SecretStore(pulumi.ComponentResource):
    """A Key Vault with RBAC: each identity may read exactly its own secrets, granted per secret."""

    def __init__(self, name: str, args: SecretStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:SecretStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        where = args.where
        self.vault = keyvault.Vault(
            f"{name}-vault",
            vault_name=args.vault_name,
            resource_group_name=where.resource_group,
            location=where.location,
            tags=dict(where.tags),
            properties={
                "tenant_id": args.tenant_id,
                "sku": {"family": "A", "name": "standard"},
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 7,
            },
            opts=child,
        )
        self.secrets: dict[str, keyvault.Secret] = {}
        for key, value in args.values.items():
            self.secrets[key] = keyvault.Secret(
                f"{name}-{key}",
                secret_name=key,
                vault_name=self.vault.name,
                resource_group_name=where.resource_group,
                properties={"value": pulumi.Output.secret(value)},
                tags=dict(where.tags),
                opts=child,
            )
        reader_role = _role_definition(args.subscription_id, config.KEY_VAULT_SECRETS_USER)
        self.grants: list[pulumi.Resource] = []  # machines boot after these exist
        for role, (principal_id, keys) in args.readers.items():
            for key in keys:
                self.grants.append(authorization.RoleAssignment(
                    f"{name}-{role}-{key}",
                    principal_id=principal_id,
                    principal_type="ServicePrincipal",
                    role_definition_id=reader_role,
                    scope=self.secrets[key].id,
                    opts=child,
                ))
        self.register_outputs({"vault": self.vault.name})


@dataclass
class StorageArgs:
    where: Location
    account_name: str
    container: str
    subscription_id: pulumi.Input[str]
    writers: Sequence[pulumi.Input[str]]  # principal ids allowed to read and write blobs
    # Principal ids allowed to read blobs: the operator who deploys, to fetch the Node's TLS root certificate
    # (shared keys are disabled, so nothing else could read it).
    readers: Sequence[pulumi.Input[str]] = ()
    # Managed identities allowed to read blobs: the Workers (the build they install, the tensors jobs read).
    machine_readers: Sequence[pulumi.Input[str]] = ()


class Storage(pulumi.ComponentResource):
    """A storage account and a private blob container: no public access, no shared keys, HTTPS and TLS 1.2
    only, encrypted at rest."""

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        where = args.where
        self.account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=where.resource_group,
            location=where.location,
            tags=dict(where.tags),
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            encryption={
                "key_source": "Microsoft.Storage",
                "require_infrastructure_encryption": True,
                "services": {
                    "blob": {"enabled": True, "key_type": "Account"},
                    "file": {"enabled": True, "key_type": "Account"},
                },
            },
            opts=child,
        )
        self.container_name = args.container
        self.container = storage.BlobContainer(
            f"{name}-container",
            container_name=args.container,
            account_name=self.account.name,
            resource_group_name=where.resource_group,
            public_access="None",
            opts=child,
        )
        writer_role = _role_definition(args.subscription_id, config.STORAGE_BLOB_DATA_CONTRIBUTOR)
        for i, principal_id in enumerate(args.writers):
            authorization.RoleAssignment(
                f"{name}-writer-{i}",
                principal_id=principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=writer_role,
                scope=self.account.id,
                opts=child,
            )
        reader_role = _role_definition(args.subscription_id, config.STORAGE_BLOB_DATA_READER)
        for i, principal_id in enumerate(args.readers):
            authorization.RoleAssignment(
                f"{name}-reader-{i}",
                principal_id=principal_id,  # a user or a service principal: Azure infers which
                role_definition_id=reader_role,
                scope=self.account.id,
                opts=child,
            )
        self.grants: list[pulumi.Resource] = []  # machines boot after these exist (they still take minutes
        for i, principal_id in enumerate(args.machine_readers):  # to propagate: bootstrap.py retries)
            self.grants.append(authorization.RoleAssignment(
                f"{name}-machine-reader-{i}",
                principal_id=principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=reader_role,
                scope=self.account.id,
                opts=child,
            ))
        self.register_outputs({"account": self.account.name, "container": self.container.name})

    def put_file(self, name: str, key: str, path: str, resource_group: pulumi.Input[str]) -> storage.Blob:
        """A file of the operator's machine as a blob of the container (the build the machines install)."""
        return storage.Blob(
            name, blob_name=key, container_name=self.container_name, account_name=self.account.name,
            resource_group_name=resource_group, type=storage.BlobType.BLOCK, source=pulumi.FileAsset(path),
            content_type="application/octet-stream",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )


@dataclass
class DatabaseArgs:
    where: Location
    server_name: str
    subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    password: pulumi.Input[str]
    sku: tuple[str, str]


class Database(pulumi.ComponentResource):
    """PostgreSQL flexible server inside a delegated subnet (no public access), resolved through a private
    DNS zone; storage encrypted at rest, TLS required by default."""

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        where = args.where
        zone = privatedns.PrivateZone(
            f"{name}-dns",
            private_zone_name=f"{args.server_name}.private.postgres.database.azure.com",
            resource_group_name=where.resource_group,
            location="global",
            tags=dict(where.tags),
            opts=child,
        )
        link = privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            private_zone_name=zone.name,
            resource_group_name=where.resource_group,
            location="global",
            virtual_network={"id": args.vnet_id},
            registration_enabled=False,
            tags=dict(where.tags),
            opts=child,
        )
        self.server = dbforpostgresql.Server(
            f"{name}-postgres",
            server_name=args.server_name,
            resource_group_name=where.resource_group,
            location=where.location,
            tags=dict(where.tags),
            version="16",
            sku={"name": args.sku[0], "tier": args.sku[1]},
            storage={"storage_size_gb": 32},
            administrator_login="gridctl",
            administrator_login_password=pulumi.Output.secret(args.password),
            network={
                "delegated_subnet_resource_id": args.subnet_id,
                "private_dns_zone_arm_resource_id": zone.id,
                "public_network_access": "Disabled",
            },
            backup={"backup_retention_days": 7},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[link]),
        )
        dbforpostgresql.Database(
            f"{name}-grid",
            database_name="grid",
            server_name=self.server.name,
            resource_group_name=where.resource_group,
            opts=child,
        )
        self.url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(self.server.fully_qualified_domain_name, args.password).apply(
                lambda values: f"postgresql+psycopg://gridctl:{values[1]}@{values[0]}:5432/grid?sslmode=require"
            )
        )
        self.register_outputs({"host": self.server.fully_qualified_domain_name})


def _os_profile(computer_name: str | None, admin_user: str, public_key: str, user_data: str) -> dict:
    profile = {
        "admin_username": admin_user,
        "custom_data": base64.b64encode(user_data.encode()).decode(),
        "linux_configuration": {
            "disable_password_authentication": True,
            "ssh": {"public_keys": [{"path": f"/home/{admin_user}/.ssh/authorized_keys", "key_data": public_key}]},
        },
    }
    if computer_name:
        profile["computer_name"] = computer_name
    else:
        profile["computer_name_prefix"] = "worker"
    return profile


def _os_disk(disk_gb: int) -> dict:
    # Managed disks are always encrypted at rest by Azure (server-side encryption with platform keys).
    return {
        "create_option": "FromImage",
        "disk_size_gb": disk_gb,
        "managed_disk": {"storage_account_type": "Premium_LRS"},
        "delete_option": "Delete",
    }


@dataclass
class ServerArgs:
    where: Location
    subnet_id: pulumi.Input[str]
    private_ip: str
    vm_size: str
    image: Mapping[str, str]
    identity_id: pulumi.Input[str]
    admin_user: str
    admin_public_key: str
    # The machine's cloud-init, given its static public address (Caddy serves on it): known from the Pulumi
    # output, because Azure's instance metadata does not report a Standard-SKU public address.
    user_data: Callable[[pulumi.Output[str]], pulumi.Input[str]]
    disk_gb: int
    depends_on: Sequence[pulumi.Resource] = ()  # role grants and the build objects it needs at first boot


class Server(pulumi.ComponentResource):
    """A VM at a fixed private address with a static public address. Made in two steps: the address first
    (the NSG of the subnet names the Node's and the Network's, each letting the other in), then :meth:`boot`
    the network interface and the VM, once the subnet exists."""

    def __init__(self, type_name: str, name: str, where: Location, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_name, name, None, opts)
        self._name = name
        self.address = network.PublicIPAddress(
            f"{name}-ip", sku={"name": "Standard"}, public_ip_allocation_method="Static",
            resource_group_name=where.resource_group, location=where.location, tags=dict(where.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.public_ip: pulumi.Output[str] = self.address.ip_address

    def boot(self, args: ServerArgs) -> None:
        name = self._name
        child = pulumi.ResourceOptions(parent=self)
        where = args.where
        common = {"resource_group_name": where.resource_group, "location": where.location, "tags": dict(where.tags)}
        nic = network.NetworkInterface(
            f"{name}-nic",
            ip_configurations=[
                {
                    "name": "primary",
                    "primary": True,
                    "private_ip_allocation_method": "Static",
                    "private_ip_address": args.private_ip,
                    "subnet": {"id": args.subnet_id},
                    "public_ip_address": {"id": self.address.id},
                }
            ],
            **common,
            opts=child,
        )
        self.vm = compute.VirtualMachine(
            f"{name}-vm",
            hardware_profile={"vm_size": args.vm_size},
            storage_profile={"image_reference": dict(args.image), "os_disk": _os_disk(args.disk_gb)},
            os_profile=pulumi.Output.from_input(args.user_data(self.address.ip_address)).apply(
                lambda user_data: _os_profile(name[:15], args.admin_user, args.admin_public_key, user_data)),
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True}]},
            identity={"type": "UserAssigned", "user_assigned_identities": [args.identity_id]},
            # Boot diagnostics (managed storage): gridctl shows the serial log when the Node does not come up.
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            **common,
            # Azure cannot change custom_data in place, and cloud-init runs once: new user-data means a new
            # machine (the provider asks the operator before it replaces a Node holding data).
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["storage_profile.image_reference"],
                                        replace_on_changes=["osProfile.customData"],
                                        depends_on=list(args.depends_on)),
        )
        self.register_outputs({"public_ip": self.public_ip, "private_ip": args.private_ip, "vm": self.vm.name})


class Node(Server):
    """The Node: API behind Caddy's TLS on 443, the Ray head beside it."""

    def __init__(self, name: str, where: Location, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:Node", name, where, opts)


class NetworkService(Server):
    """The optional Network service: its API behind Caddy's TLS on 443."""

    def __init__(self, name: str, where: Location, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:NetworkService", name, where, opts)


@dataclass
class WorkerPoolArgs:
    where: Location
    count: int
    subnet_id: pulumi.Input[str]
    vm_size: str
    image: Mapping[str, str]
    identity_id: pulumi.Input[str]
    admin_user: str
    admin_public_key: str
    user_data: str
    disk_gb: int
    depends_on: Sequence[pulumi.Resource] = ()  # role grants and the build objects they need at first boot


class WorkerPool(pulumi.ComponentResource):
    """Workers as a VM scale set: no public addresses, managed (encrypted) disks; each joins the Ray head at
    boot. Scaling changes the scale set's capacity only."""

    def __init__(self, name: str, args: WorkerPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gridctl:azure:WorkerPool", name, None, opts)
        where = args.where
        self.scale_set = compute.VirtualMachineScaleSet(
            f"{name}-vmss",
            resource_group_name=where.resource_group,
            location=where.location,
            tags=dict(where.tags),
            sku={"name": args.vm_size, "tier": "Standard", "capacity": args.count},
            orchestration_mode="Uniform",
            overprovision=False,
            # A new model (new user-data: a new build) is rolled onto every Worker.
            upgrade_policy={"mode": "Automatic"},
            identity={"type": "UserAssigned", "user_assigned_identities": [args.identity_id]},
            virtual_machine_profile={
                "os_profile": _os_profile(None, args.admin_user, args.admin_public_key, args.user_data),
                "storage_profile": {
                    "image_reference": dict(args.image),
                    "os_disk": {
                        "create_option": "FromImage",
                        "disk_size_gb": args.disk_gb,
                        "managed_disk": {"storage_account_type": "Premium_LRS"},
                    },
                },
                "diagnostics_profile": {"boot_diagnostics": {"enabled": True}},
                # No public_ip_address_configuration: Workers have no public address.
                "network_profile": {
                    "network_interface_configurations": [
                        {
                            "name": "workers",
                            "primary": True,
                            "ip_configurations": [
                                {"name": "workers", "primary": True, "subnet": {"id": args.subnet_id}}
                            ],
                        }
                    ]
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"scale_set": self.scale_set.name, "count": args.count})
