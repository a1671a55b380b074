"""The Azure program, run offline under Pulumi's mocks: security defaults, user-data, scaling, plan."""

from __future__ import annotations

import base64

import pytest

from providers import cloud
from providers.azure import program
from providers.azure.config import KEY_VAULT_SECRETS_USER
from templates.render import render
from tests import cloud_checks as checks
from tests.cloud_checks import OPERATOR_CIDR, THROWAWAY_KEY, WIDER_CIDR, of_type, one, settings

NSG = "azure-native:network:NetworkSecurityGroup"
VM = "azure-native:compute:VirtualMachine"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


spec, plan, ssh_plan = checks.plan_fixtures(program, "westeurope")


def rules(plan, name):
    return {rule["name"]: rule for rule in one(plan, NSG, name).inputs["securityRules"]}


def custom_data(resource_inputs) -> str:
    profile = resource_inputs.get("osProfile") or resource_inputs["virtualMachineProfile"]["osProfile"]
    return base64.b64decode(profile["customData"]).decode()


class TestLabels:
    def test_every_taggable_resource_carries_the_deployment_name(self, plan):
        taggable, untagged = checks.unlabelled(plan, "tags")
        assert taggable >= 20 and untagged == []


class TestIngress:
    def test_the_api_is_open_on_443_to_the_operators_cidr_only(self, plan):
        allowed = [
            r
            for r in rules(plan, "demo-net-node-nsg").values()
            if r["access"] == "Allow" and r["sourceAddressPrefixes"] != ["10.42.2.0/24"]
        ]
        # With --network (this plan), each of the Node and the Network machine also lets the other's public
        # address in on 443, to its own private address only (tests/test_programs_network.py).
        assert [(r["destinationPortRanges"], r["sourceAddressPrefixes"], r["destinationAddressPrefix"])
                for r in allowed] == [
            (["443"], [OPERATOR_CIDR], "*"),
            (["443"], ["192.0.2.10/32"], "10.42.1.11/32"),
            (["443"], ["192.0.2.11/32"], "10.42.1.10/32"),
        ]

    def test_there_is_no_ssh_unless_asked(self, plan):
        for nsg in ("demo-net-node-nsg", "demo-net-worker-nsg"):
            assert not [r for r in rules(plan, nsg).values() if "22" in r["destinationPortRanges"]]

    def test_ssh_when_asked_is_open_to_the_given_cidr_only(self, ssh_plan):
        ssh = [r for r in rules(ssh_plan, "demo-net-node-nsg").values() if r["destinationPortRanges"] == ["22"]]
        assert [r["sourceAddressPrefixes"] for r in ssh] == [[WIDER_CIDR]]

    def test_allow_cidr_widens_the_api_ingress(self, ssh_plan):
        https = [
            r["sourceAddressPrefixes"][0]
            for r in rules(ssh_plan, "demo-net-node-nsg").values()
            if r["destinationPortRanges"] == ["443"]
        ]
        assert https == [OPERATOR_CIDR, WIDER_CIDR]

    def test_ray_ports_are_open_only_to_the_workers_and_the_rest_of_the_vnet_is_denied(self, plan):
        node = rules(plan, "demo-net-node-nsg")
        assert node["ray-from-workers"]["sourceAddressPrefixes"] == ["10.42.2.0/24"]
        assert node["deny-rest-of-vnet"]["access"] == "Deny"
        assert node["deny-rest-of-vnet"]["priority"] > node["ray-from-workers"]["priority"]
        worker = rules(plan, "demo-net-worker-nsg")
        assert worker["ray-from-node"]["sourceAddressPrefixes"] == ["10.42.1.10/32"]
        assert worker["deny-rest-of-vnet"]["access"] == "Deny"
        assert not [r for r in worker.values() if r["access"] == "Allow" and "443" in r["destinationPortRanges"]]

    def test_the_database_has_no_public_access(self, plan):
        server = one(plan, "azure-native:dbforpostgresql:Server", "demo-db-postgres").inputs
        assert server["network"]["publicNetworkAccess"] == "Disabled"
        assert server["network"]["delegatedSubnetResourceId"]


class TestStorage:
    def test_the_storage_account_is_private_encrypted_and_https_only(self, plan):
        account = one(plan, "azure-native:storage:StorageAccount", "demo-storage-account").inputs
        assert account["allowBlobPublicAccess"] is False
        assert account["allowSharedKeyAccess"] is False
        assert account["enableHttpsTrafficOnly"] is True
        assert account["minimumTlsVersion"] == "TLS1_2"
        assert account["encryption"]["services"]["blob"]["enabled"] is True
        assert account["encryption"]["requireInfrastructureEncryption"] is True

    def test_the_container_is_not_public(self, plan):
        assert (
            one(plan, "azure-native:storage:BlobContainer", "demo-storage-container").inputs["publicAccess"] == "None"
        )

    def test_no_database_is_declared_with_sqlite(self):
        assert not of_type(program.plan(settings(region="westeurope")), "azure-native:dbforpostgresql:Server")


class TestWorkers:
    def test_workers_have_no_public_address(self, plan):
        profile = one(plan, VMSS, "demo-workers-vmss").inputs["virtualMachineProfile"]["networkProfile"]
        for nic in profile["networkInterfaceConfigurations"]:
            assert all("publicIPAddressConfiguration" not in ip for ip in nic["ipConfigurations"])

    def test_the_worker_subnet_goes_out_through_the_nat_gateway_only(self, plan):
        subnet = one(plan, "azure-native:network:Subnet", "demo-net-workers").inputs
        assert subnet["natGateway"]["id"] and subnet["defaultOutboundAccess"] is False

    def test_the_scale_set_capacity_is_the_worker_count(self, plan):
        assert one(plan, VMSS, "demo-workers-vmss").inputs["sku"]["capacity"] == 2

    def test_changing_the_worker_count_changes_only_the_worker_pool(self, spec, plan):
        bigger = program.plan(spec.with_workers(3), redact=False)
        assert checks.changed(plan, bigger) == {(VMSS, "demo-workers-vmss")}

    def test_password_login_is_disabled_everywhere(self, plan):
        for resource in [*of_type(plan, VM), one(plan, VMSS, "demo-workers-vmss")]:
            inputs = resource.inputs
            profile = inputs.get("osProfile") or inputs["virtualMachineProfile"]["osProfile"]
            assert profile["linuxConfiguration"]["disablePasswordAuthentication"] is True
            assert profile["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"] == THROWAWAY_KEY


class TestSecrets:
    def test_secrets_go_to_key_vault_and_nowhere_else(self, plan):
        assert checks.secret_holders(plan) == checks.store_entries("azure-native:keyvault:Secret") | {
            ("azure-native:dbforpostgresql:Server", "demo-db-postgres"),  # the admin password, as Azure requires
        }

    def test_no_secret_value_appears_in_any_custom_data(self, plan):
        data = [custom_data(r.inputs) for r in [*of_type(plan, VM), one(plan, VMSS, "demo-workers-vmss")]]
        assert len(data) == 3
        for text_ in data:
            assert not [value for value in checks.SECRETS.values() if value in text_]

    def test_the_vault_uses_rbac_and_each_identity_reads_only_its_own_secrets(self, plan):
        vault = one(plan, "azure-native:keyvault:Vault", "demo-secrets-vault").inputs
        assert vault["properties"]["enableRbacAuthorization"] is True
        grants = {
            (r.inputs["principalId"], r.inputs["scope"])
            for r in of_type(plan, "azure-native:authorization:RoleAssignment")
            if r.inputs["roleDefinitionId"].endswith(KEY_VAULT_SECRETS_USER)
        }
        assert {scope for principal, scope in grants if principal == "principal-demo-identity-worker"} == {
            "demo-secrets-ray-token-id"
        }  # the secret's own id: a grant on one secret, not the vault
        assert {scope for principal, scope in grants if principal == "principal-demo-identity-node"} == {
            "demo-secrets-setup-token-id",
            "demo-secrets-ray-token-id",
            "demo-secrets-database-url-id",
        }


    def test_the_operator_and_the_workers_may_only_read_the_storage_account(self, plan):
        from providers.azure.config import STORAGE_BLOB_DATA_READER

        readers = [r.inputs for r in of_type(plan, "azure-native:authorization:RoleAssignment")
                   if r.inputs["roleDefinitionId"].endswith(STORAGE_BLOB_DATA_READER)]
        # the deploying principal (objectId of the client config) to fetch the TLS root, and the Workers'
        # identity (the build they install, the tensors their jobs read), on the storage account alone
        assert sorted((r["principalId"], r["scope"]) for r in readers) == [
            ("00000000-0000-0000-0000-000000000002", "demo-storage-account-id"),
            ("principal-demo-identity-worker", "demo-storage-account-id")]


class TestUserData:
    @pytest.mark.parametrize(("role", "resource"), [("node", "demo-node-vm"), ("network", "demo-network-vm")])
    def test_servers_boot_the_template_rendered_from_templates(self, spec, plan, role, resource):
        address = cloud.offline_public_address(f"demo-{role}-ip")  # the mocks' address of that machine
        expected = render(f"cloud-init/{role}.yaml.j2", **program.machine_context(role, spec, address))
        assert custom_data(one(plan, VM, resource).inputs) == expected

    def test_workers_boot_the_worker_template(self, spec, plan):
        expected = render("cloud-init/worker.yaml.j2", **program.machine_context("worker", spec))
        assert custom_data(one(plan, VMSS, "demo-workers-vmss").inputs) == expected


class TestPlan:
    def test_plan_redacts_every_secret_value(self, spec):
        checks.assert_the_plan_redacts_every_secret(program, spec, "azure-native:keyvault:Secret")


def node_custom_data(plan) -> str:
    return custom_data(one(plan, VM, "demo-node-vm").inputs)


class TestTheOperatorsBuild:
    """Issue 12, Measured 1: machines install the operator's own wheel, by hash, never 'gridctl' from an index."""

    def test_the_wheel_and_constraints_are_blobs_of_the_container(self, spec, plan):
        blobs = checks.build_objects(plan, spec, "azure-native:storage:Blob", key_field="blobName")
        assert {b["containerName"] for b in blobs.values()} == {"tensors"}

    def test_every_machine_is_told_the_sha256_of_what_it_installs(self, spec, plan):
        for data in (node_custom_data(plan), custom_data(one(plan, VMSS, "demo-workers-vmss").inputs)):
            assert checks.installs_the_build_by_hash(spec, data, "azure-storage")

    def test_machines_boot_after_their_grants_and_the_objects_exist(self, plan):
        for machine in (one(plan, VM, "demo-node-vm"), one(plan, VMSS, "demo-workers-vmss")):
            assert {"demo-build-wheel", "demo-build-constraints", "demo-secrets-worker-ray-token",
                    "demo-storage-machine-reader-0"} <= set(machine.dependencies)


class TestAzureSpecifics:
    """Issue 12, Measured 5."""

    def test_the_virtual_network_service_tag_is_in_the_singular_field(self, plan):
        for nsg in ("demo-net-node-nsg", "demo-net-worker-nsg"):
            deny = rules(plan, nsg)["deny-rest-of-vnet"]
            assert deny["sourceAddressPrefix"] == "VirtualNetwork" and "sourceAddressPrefixes" not in deny
            for rule in rules(plan, nsg).values():  # no service tag in a list, where Azure refuses it
                assert not [p for p in rule.get("sourceAddressPrefixes", []) if not p[0].isdigit()]

    def test_caddy_is_given_the_public_ip_from_the_program_not_the_instance_metadata(self, plan):
        data = node_custom_data(plan)
        assert "GRID_PUBLIC_ADDRESS=192.0.2.10\n" in data  # the PublicIPAddress's ipAddress output
        assert "publicIpAddress" not in data and "instance/network" not in data

    def test_boot_diagnostics_are_on_for_the_console_log(self, plan):
        assert one(plan, VM, "demo-node-vm").inputs["diagnosticsProfile"]["bootDiagnostics"]["enabled"] is True


class TestChanges:
    def test_a_changed_custom_data_replaces_the_vm_instead_of_failing(self, plan):
        assert "osProfile.customData" in one(plan, VM, "demo-node-vm").replace_on_changes

    def test_a_new_model_is_rolled_onto_the_workers(self, plan):
        assert one(plan, VMSS, "demo-workers-vmss").inputs["upgradePolicy"]["mode"] == "Automatic"


class TestCost:
    def test_no_nat_gateway_while_there_are_no_workers(self):
        quiet = program.plan(settings(region="westeurope", workers=0), redact=False)
        assert not of_type(quiet, "azure-native:network:NatGateway")
        assert "natGateway" not in one(quiet, "azure-native:network:Subnet", "demo-net-workers").inputs


class TestDomain:
    def test_port_80_is_open_to_the_internet_for_acme_and_only_with_a_domain(self, plan):
        with_domain = program.plan(settings(region="westeurope", domain="grid.example.org"), redact=False)
        acme = rules(with_domain, "demo-net-node-nsg")["acme-http"]
        assert (acme["destinationPortRanges"], acme["sourceAddressPrefix"], acme["access"]) == (
            ["80"], "Internet", "Allow")
        https = [r for r in rules(with_domain, "demo-net-node-nsg").values() if "443" in r["destinationPortRanges"]]
        assert [r["sourceAddressPrefixes"] for r in https] == [[OPERATOR_CIDR]]
        assert "acme-http" not in rules(plan, "demo-net-node-nsg")
