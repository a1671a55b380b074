"""The GCP program, run offline under Pulumi's mocks: security defaults, user-data, scaling, plan."""

from __future__ import annotations

import pytest

from providers import cloud
from providers.gcp import program
from templates.render import render
from tests import cloud_checks as checks
from tests.cloud_checks import OPERATOR_CIDR, WIDER_CIDR, of_type, one, settings

FIREWALL = "gcp:compute/firewall:Firewall"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"


spec, plan, ssh_plan = checks.plan_fixtures(program, "europe-west1")


def firewalls(plan):
    return {r.name: r.inputs for r in of_type(plan, FIREWALL)}


class TestLabels:
    def test_every_labelable_resource_carries_the_deployment_name(self, plan):
        labelable, unlabelled_names = checks.unlabelled(plan, "labels")
        assert labelable >= 8 and unlabelled_names == []

    def test_disks_and_the_database_are_labelled_too(self, plan):
        node = one(plan, "gcp:compute/instance:Instance", "demo-node-instance").inputs
        assert node["bootDisk"]["initializeParams"]["labels"]["gridctl-deployment"] == "demo"
        template = one(plan, TEMPLATE, "demo-workers-template").inputs
        assert template["disks"][0]["labels"]["gridctl-deployment"] == "demo"
        database = one(plan, "gcp:sql/databaseInstance:DatabaseInstance", "demo-db-postgres").inputs
        assert database["settings"]["userLabels"]["gridctl-deployment"] == "demo"


class TestIngress:
    def test_only_the_api_is_open_to_a_cidr_and_only_to_the_operators(self, plan):
        with_ranges = {name: rule for name, rule in firewalls(plan).items() if rule.get("sourceRanges")}
        # With --network (this plan), each of the Node and the Network machine also lets the other's external
        # address in on 443 (tests/test_programs_network.py): a /32 each, and nothing else.
        peers = {name: with_ranges.pop(name) for name in ("demo-net-network-https-from-node",
                                                           "demo-net-node-https-from-network")}
        assert {(tuple(r["targetTags"]), tuple(r["sourceRanges"])) for r in peers.values()} == {
            (("gridctl-demo-network",), ("192.0.2.10/32",)), (("gridctl-demo-node",), ("192.0.2.11/32",))}
        assert all(r["allows"] == [{"protocol": "tcp", "ports": ["443"]}] for r in peers.values())
        assert list(with_ranges) == ["demo-net-https"]
        rule = with_ranges["demo-net-https"]
        assert rule["sourceRanges"] == [OPERATOR_CIDR]
        assert rule["allows"] == [{"protocol": "tcp", "ports": ["443"]}]

    def test_there_is_no_ssh_unless_asked(self, plan):
        assert not [
            rule for rule in firewalls(plan).values() if any("22" in allow["ports"] for allow in rule["allows"])
        ]

    def test_ssh_when_asked_is_open_to_the_given_cidr_only(self, ssh_plan):
        rule = firewalls(ssh_plan)["demo-net-ssh"]
        assert rule["sourceRanges"] == [WIDER_CIDR] and rule["allows"][0]["ports"] == ["22"]

    def test_allow_cidr_widens_the_api_ingress(self, ssh_plan):
        assert firewalls(ssh_plan)["demo-net-https"]["sourceRanges"] == [OPERATOR_CIDR, WIDER_CIDR]

    def test_ray_ports_are_open_only_between_node_and_workers(self, plan):
        rules = firewalls(plan)
        assert rules["demo-net-ray-to-node"]["sourceTags"] == ["gridctl-demo-worker"]
        assert rules["demo-net-ray-to-node"]["targetTags"] == ["gridctl-demo-node"]
        assert rules["demo-net-ray-to-workers"]["sourceTags"] == ["gridctl-demo-node", "gridctl-demo-worker"]
        for name in ("demo-net-ray-to-node", "demo-net-ray-to-workers"):
            assert "sourceRanges" not in rules[name]

    def test_the_database_has_no_public_address_and_requires_tls(self, plan):
        database = one(plan, "gcp:sql/databaseInstance:DatabaseInstance", "demo-db-postgres").inputs
        assert database["settings"]["ipConfiguration"]["ipv4Enabled"] is False
        assert database["settings"]["ipConfiguration"]["sslMode"] == "ENCRYPTED_ONLY"


class TestStorage:
    def test_the_bucket_is_uniform_and_never_public(self, plan):
        bucket = one(plan, "gcp:storage/bucket:Bucket", "demo-storage-bucket").inputs
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"

    def test_only_the_node_and_network_service_may_write_the_bucket_and_workers_read_it(self, plan):
        members = {(r.inputs["member"], r.inputs["role"])
                   for r in of_type(plan, "gcp:storage/bucketIAMMember:BucketIAMMember")}
        assert members == {
            ("serviceAccount:gridctl-demo-node@demo-project.iam.gserviceaccount.com", "roles/storage.objectUser"),
            ("serviceAccount:gridctl-demo-network@demo-project.iam.gserviceaccount.com", "roles/storage.objectUser"),
            ("serviceAccount:gridctl-demo-worker@demo-project.iam.gserviceaccount.com",
             "roles/storage.objectViewer"),
        }

    def test_no_database_is_declared_with_sqlite(self):
        assert not of_type(program.plan(settings(region="europe-west1")), "gcp:sql/databaseInstance:DatabaseInstance")


class TestWorkers:
    def test_workers_have_no_external_address(self, plan):
        template = one(plan, TEMPLATE, "demo-workers-template").inputs
        assert all("accessConfigs" not in nic for nic in template["networkInterfaces"])

    def test_only_the_worker_subnet_is_natted(self, plan):
        nat = one(plan, "gcp:compute/routerNat:RouterNat", "demo-net-nat").inputs
        assert [s["name"] for s in nat["subnetworks"]] == ["demo-net-workers-id"]

    def test_the_group_size_is_the_worker_count(self, plan):
        group = one(plan, "gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group").inputs
        assert group["targetSize"] == 2

    def test_changing_the_worker_count_changes_only_the_worker_pool(self, spec, plan):
        bigger = program.plan(spec.with_workers(3), redact=False)
        assert checks.changed(plan, bigger) == {
            ("gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group")
        }


class TestSecrets:
    def test_secrets_go_to_secret_manager_and_nowhere_else(self, plan):
        assert checks.secret_holders(plan) == checks.store_entries("gcp:secretmanager/secretVersion:SecretVersion") | {
            ("gcp:sql/user:User", "demo-db-gridctl"),  # the database user's password, as Cloud SQL requires
        }

    def test_no_secret_value_appears_in_any_metadata(self, plan):
        metadata = [r.inputs["metadata"] for r in of_type(plan, "gcp:compute/instance:Instance")]
        metadata.append(one(plan, TEMPLATE, "demo-workers-template").inputs["metadata"])
        assert len(metadata) == 3
        for data in metadata:
            assert not [value for value in checks.SECRETS.values() if value in text_of(data)]
            assert data["block-project-ssh-keys"] == "TRUE"

    def test_each_role_may_read_only_its_own_secrets(self, plan):
        grants = {
            (r.inputs["member"].split("@")[0], r.inputs["secretId"])
            for r in of_type(plan, "gcp:secretmanager/secretIamMember:SecretIamMember")
        }
        worker = {secret for member, secret in grants if member == "serviceAccount:gridctl-demo-worker"}
        assert worker == {"demo-secrets-ray-token-id"}


def text_of(value) -> str:
    return repr(value)


class TestUserData:
    @pytest.mark.parametrize(
        ("role", "resource"), [("node", "demo-node-instance"), ("network", "demo-network-instance")]
    )
    def test_servers_boot_the_template_rendered_from_templates(self, spec, plan, role, resource):
        address = cloud.offline_public_address(f"demo-{role}-ip")  # the mocks' address of that machine
        expected = render(f"cloud-init/{role}.yaml.j2", **program.machine_context(role, spec, address))
        assert one(plan, "gcp:compute/instance:Instance", resource).inputs["metadata"]["user-data"] == expected

    def test_workers_boot_the_worker_template(self, spec, plan):
        expected = render("cloud-init/worker.yaml.j2", **program.machine_context("worker", spec))
        assert one(plan, TEMPLATE, "demo-workers-template").inputs["metadata"]["user-data"] == expected


class TestPlan:
    def test_plan_redacts_every_secret_value(self, spec):
        checks.assert_the_plan_redacts_every_secret(program, spec, "gcp:secretmanager/secretVersion:SecretVersion")

    def test_plan_needs_a_project(self):
        with pytest.raises(ValueError, match="project"):
            program.plan(settings(region="europe-west1", project=None))


def node_user_data(plan) -> str:
    return one(plan, "gcp:compute/instance:Instance", "demo-node-instance").inputs["metadata"]["user-data"]


class TestTheOperatorsBuild:
    """Issue 12, Measured 1: machines install the operator's own wheel, by hash, never 'gridctl' from an index."""

    def test_the_wheel_and_constraints_are_stack_objects_of_the_bucket(self, spec, plan):
        objects = checks.build_objects(plan, spec, "gcp:storage/bucketObject:BucketObject", key_field="name")
        assert {o["bucket"] for o in objects.values()} == {"gridctl-demo-tensors-abc123"}

    def test_every_machine_is_told_the_sha256_of_what_it_installs(self, spec, plan):
        worker = one(plan, TEMPLATE, "demo-workers-template").inputs["metadata"]["user-data"]
        for data in (node_user_data(plan), worker):
            assert checks.installs_the_build_by_hash(spec, data, "gcs")

    def test_machines_boot_after_the_objects_exist(self, plan):
        for machine in (one(plan, "gcp:compute/instance:Instance", "demo-node-instance"),
                        one(plan, "gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group")):
            assert {"demo-build-wheel", "demo-build-constraints"} <= set(machine.dependencies)


class TestManagedDatabase:
    """Issue 12, Measured 6."""

    def test_postgres_16_with_a_custom_tier_is_an_enterprise_edition_instance(self, plan):
        settings_ = one(plan, "gcp:sql/databaseInstance:DatabaseInstance", "demo-db-postgres").inputs["settings"]
        assert settings_["tier"].startswith("db-custom-") and settings_["edition"] == "ENTERPRISE"

    def test_destroy_abandons_the_service_networking_connection_instead_of_failing_on_it(self, plan):
        connection = one(plan, "gcp:servicenetworking/connection:Connection", "demo-net-services").inputs
        assert connection["deletionPolicy"] == "ABANDON"
        database = one(plan, "gcp:sql/databaseInstance:DatabaseInstance", "demo-db-postgres")
        assert "demo-net-services" in database.dependencies  # the database goes first

    @pytest.mark.parametrize("name", ["demo", "a-twenty-one-chars-xy", "a-much-longer-deployment-name-39-chars"])
    def test_service_account_ids_are_valid_and_distinct_for_every_name_length(self, name):
        import re

        from providers.gcp.config import service_account_id

        spec = settings(name=name, region="europe-west1")
        ids = {role: service_account_id(spec, role) for role in ("node", "worker", "network")}
        assert len(set(ids.values())) == 3
        for account_id in ids.values():
            assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account_id), account_id
        other = settings(name=name[:-1] + ("z" if name[-1] != "z" else "y"), region="europe-west1")
        assert service_account_id(other, "node") != ids["node"]  # two long names sharing a prefix stay apart
        accounts = {r.inputs["accountId"] for r in of_type(program.plan(spec, redact=False),
                                                              "gcp:serviceaccount/account:Account")}
        assert accounts == {ids["node"], ids["worker"]}


class TestChanges:
    """Issue 12, Measured 9: a changed user-data takes effect, on a new machine, never silently nothing."""

    def test_a_changed_user_data_replaces_the_node(self, plan):
        node = one(plan, "gcp:compute/instance:Instance", "demo-node-instance")
        assert "metadata" in node.replace_on_changes

    def test_a_new_template_replaces_the_workers(self, plan):
        group = one(plan, "gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group").inputs
        assert (group["updatePolicy"]["type"], group["updatePolicy"]["minimalAction"]) == ("PROACTIVE", "REPLACE")


class TestDomain:
    def test_port_80_is_open_to_everyone_for_acme_and_only_with_a_domain(self, plan):
        with_domain = program.plan(settings(region="europe-west1", domain="grid.example.org"), redact=False)
        acme = [r.inputs for r in of_type(with_domain, "gcp:compute/firewall:Firewall")
                if r.inputs.get("sourceRanges") == ["0.0.0.0/0"]]
        assert [(rule["allows"][0]["ports"], rule["targetTags"]) for rule in acme] == [(["80"], ["gridctl-demo-node"])]
        assert not [r for r in of_type(plan, "gcp:compute/firewall:Firewall") if r.name == "demo-net-acme"]

    def test_caddy_is_given_the_static_address(self, plan):
        assert "GRID_PUBLIC_ADDRESS=192.0.2.10\n" in node_user_data(plan)


class TestCost:
    def test_no_cloud_nat_while_there_are_no_workers(self, plan):
        quiet = program.plan(settings(region="europe-west1", workers=0), redact=False)
        assert not of_type(quiet, "gcp:compute/routerNat:RouterNat")
        assert [r.name for r in of_type(plan, "gcp:compute/routerNat:RouterNat")] == ["demo-net-nat"]
        group = one(plan, "gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group")
        assert "demo-net-nat" in group.dependencies  # Workers boot with a way out to the package mirrors
