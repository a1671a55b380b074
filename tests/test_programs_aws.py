"""The AWS program, run offline under Pulumi's mocks: security defaults, user-data, scaling, plan."""

from __future__ import annotations

import base64

from providers.aws import program
from templates.render import render
from tests import cloud_checks as checks
from tests.cloud_checks import OPERATOR_CIDR, WIDER_CIDR, of_type, one, settings

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


spec, plan, ssh_plan = checks.plan_fixtures(program, "eu-west-1")


def ingress_rules(plan):
    return [r.inputs for r in of_type(plan, INGRESS)]


class TestLabels:
    def test_every_taggable_resource_carries_the_deployment_name(self, plan):
        taggable, untagged = checks.unlabelled(plan, "tags")
        assert taggable > 30 and untagged == []

    def test_worker_instances_and_volumes_are_tagged_at_launch(self, plan):
        template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs
        kinds = {spec["resourceType"]: spec["tags"] for spec in template["tagSpecifications"]}
        assert kinds["instance"]["gridctl-deployment"] == "demo"
        assert kinds["volume"]["gridctl-deployment"] == "demo"
        group = one(plan, "aws:autoscaling/group:Group", "demo-workers-group").inputs
        assert {"key": "gridctl-deployment", "value": "demo", "propagateAtLaunch": True} in group["tags"]


class TestIngress:
    def test_the_api_is_reachable_on_443_from_the_operators_cidr_only(self, plan):
        # With --network (this plan), each of the Node and the Network machine also lets the other's public
        # address in on 443 (tests/test_programs_network.py): a /32 each, and nothing else.
        peers = {"192.0.2.10/32", "192.0.2.11/32"}
        open_to_cidrs = [rule for rule in ingress_rules(plan) if rule.get("cidrIpv4") not in (None, *peers)]
        assert {(r["fromPort"], r["toPort"], r["cidrIpv4"]) for r in open_to_cidrs} == {(443, 443, OPERATOR_CIDR)}
        assert {(r["fromPort"], r["toPort"], r["cidrIpv4"]) for r in ingress_rules(plan)
                if r.get("cidrIpv4") in peers} == {(443, 443, peer) for peer in peers}

    def test_nothing_is_open_to_the_whole_internet(self, plan, ssh_plan):
        for rules in (ingress_rules(plan), ingress_rules(ssh_plan)):
            assert all(
                rule.get("cidrIpv4") not in ("0.0.0.0/0", None) or rule.get("referencedSecurityGroupId")
                for rule in rules
            )
            assert not any(rule.get("cidrIpv4") == "0.0.0.0/0" for rule in rules)

    def test_there_is_no_ssh_unless_asked(self, plan):
        assert not [rule for rule in ingress_rules(plan) if rule["fromPort"] <= 22 <= rule["toPort"]]

    def test_ssh_when_asked_is_open_to_the_given_cidr_only(self, ssh_plan):
        ssh = [rule for rule in ingress_rules(ssh_plan) if rule["fromPort"] == 22]
        assert ssh and {rule["cidrIpv4"] for rule in ssh} == {WIDER_CIDR}

    def test_allow_cidr_widens_the_api_ingress(self, ssh_plan):
        https = {rule["cidrIpv4"] for rule in ingress_rules(ssh_plan) if rule["fromPort"] == 443}
        assert https == {OPERATOR_CIDR, WIDER_CIDR}

    def test_ray_ports_are_open_only_between_node_and_worker_security_groups(self, plan):
        ray = [r for r in of_type(plan, INGRESS) if r.inputs["fromPort"] in (6379, 11000)]
        assert len(ray) == 6
        for rule in ray:
            assert "cidrIpv4" not in rule.inputs and rule.inputs["referencedSecurityGroupId"]
            assert rule.name.startswith(("demo-net-node-ray", "demo-net-worker-ray", "demo-net-worker-peer-ray"))

    def test_the_database_accepts_the_node_only(self, plan):
        rule = one(plan, INGRESS, "demo-db-postgres-from-node").inputs
        assert rule["fromPort"] == 5432 and "cidrIpv4" not in rule
        assert rule["referencedSecurityGroupId"] == "demo-net-node-id"


class TestEncryption:
    def test_node_and_network_root_disks_are_encrypted(self, plan):
        for instance in of_type(plan, "aws:ec2/instance:Instance"):
            assert instance.inputs["rootBlockDevice"]["encrypted"] is True
            assert instance.inputs["metadataOptions"]["httpTokens"] == "required"

    def test_worker_disks_are_encrypted(self, plan):
        template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs
        assert [m["ebs"]["encrypted"] for m in template["blockDeviceMappings"]] == ["true"]

    def test_the_bucket_is_encrypted_private_and_tls_only(self, plan):
        encryption = one(
            plan,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "demo-storage-encryption",
        ).inputs
        assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        block = one(
            plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "demo-storage-public-access-block"
        ).inputs
        assert all(
            block[k] is True
            for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        )
        policy = one(plan, "aws:s3/bucketPolicy:BucketPolicy", "demo-storage-tls-only").inputs["policy"]
        assert "aws:SecureTransport" in policy and '"Deny"' in policy

    def test_the_managed_database_is_private_and_encrypted(self, plan):
        database = one(plan, "aws:rds/instance:Instance", "demo-db-postgres").inputs
        assert database["storageEncrypted"] is True
        assert database["publiclyAccessible"] is False

    def test_no_database_is_declared_with_sqlite(self):
        assert not of_type(program.plan(settings(workers=0)), "aws:rds/instance:Instance")


class TestWorkers:
    def test_workers_have_no_public_address(self, plan):
        template = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs
        assert [nic["associatePublicIpAddress"] for nic in template["networkInterfaces"]] == ["false"]
        subnet = one(plan, "aws:ec2/subnet:Subnet", "demo-net-workers").inputs
        assert subnet["mapPublicIpOnLaunch"] is False

    def test_the_worker_subnet_routes_out_through_nat_only(self, plan):
        routes = one(plan, "aws:ec2/routeTable:RouteTable", "demo-net-private-routes").inputs["routes"]
        assert [set(route) for route in routes] == [{"cidrBlock", "natGatewayId"}]

    def test_the_group_size_is_the_worker_count(self, plan):
        group = one(plan, "aws:autoscaling/group:Group", "demo-workers-group").inputs
        assert (group["minSize"], group["maxSize"], group["desiredCapacity"]) == (2, 2, 2)

    def test_changing_the_worker_count_changes_only_the_worker_pool(self, spec, plan):
        bigger = program.plan(spec.with_workers(3), redact=False)
        assert checks.changed(plan, bigger) == {("aws:autoscaling/group:Group", "demo-workers-group")}


class TestSecrets:
    def test_secrets_go_to_secrets_manager_and_nowhere_else(self, plan):
        assert checks.secret_holders(plan) == checks.store_entries("aws:secretsmanager/secretVersion:SecretVersion") | {
            ("aws:rds/instance:Instance", "demo-db-postgres"),  # the admin password, as RDS requires
        }

    def test_no_secret_value_appears_in_any_user_data(self, plan):
        user_data = [r.inputs["userData"] for r in of_type(plan, "aws:ec2/instance:Instance")]
        user_data.append(
            base64.b64decode(
                one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs["userData"]
            ).decode()
        )
        assert len(user_data) == 3
        for data in user_data:
            assert not [value for value in checks.SECRETS.values() if value in data]

    def test_each_role_may_read_only_its_own_secrets(self, plan):
        policies = {
            r.name: r.inputs["policy"]
            for r in of_type(plan, "aws:iam/rolePolicy:RolePolicy")
            if r.name.endswith("-secrets")
        }
        assert "demo-secrets-ray-token" in policies["demo-worker-secrets"]
        assert "setup-token" not in policies["demo-worker-secrets"]
        assert "database-url" not in policies["demo-worker-secrets"]
        for key in ("setup-token", "ray-token", "database-url"):
            assert f"demo-secrets-{key}" in policies["demo-node-secrets"]


class TestUserData:
    def test_the_node_boots_the_template_rendered_from_templates(self, spec, plan):
        expected = render("cloud-init/node.yaml.j2", **program.machine_context("node", spec, "192.0.2.10"))
        assert one(plan, "aws:ec2/instance:Instance", "demo-node-instance").inputs["userData"] == expected

    def test_workers_boot_the_worker_template(self, spec, plan):
        expected = render("cloud-init/worker.yaml.j2", **program.machine_context("worker", spec))
        encoded = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs["userData"]
        assert base64.b64decode(encoded).decode() == expected

    def test_the_network_service_boots_the_network_template(self, spec, plan):
        expected = render("cloud-init/network.yaml.j2", **program.machine_context("network", spec, "192.0.2.11"))
        assert one(plan, "aws:ec2/instance:Instance", "demo-network-instance").inputs["userData"] == expected


class TestPlan:
    def test_plan_redacts_every_secret_value(self, spec):
        checks.assert_the_plan_redacts_every_secret(program, spec, "aws:secretsmanager/secretVersion:SecretVersion")

    def test_plan_groups_resources_under_their_components(self, plan):
        components = {r.type for r in plan if not r.custom}
        assert {"gridctl:aws:Node", "gridctl:aws:WorkerPool", "gridctl:aws:PrivateNetwork"} <= components
        assert one(plan, "aws:ec2/instance:Instance", "demo-node-instance").parent == "demo-node"


def node_user_data(plan) -> str:
    return one(plan, "aws:ec2/instance:Instance", "demo-node-instance").inputs["userData"]


def worker_user_data(plan) -> str:
    encoded = one(plan, "aws:ec2/launchTemplate:LaunchTemplate", "demo-workers-template").inputs["userData"]
    return base64.b64decode(encoded).decode()


class TestTheOperatorsBuild:
    """Issue 12, Measured 1: machines install the operator's own wheel, by hash, never 'gridctl' from an index."""

    def test_the_wheel_and_constraints_are_stack_objects_of_the_bucket(self, spec, plan):
        objects = checks.build_objects(plan, spec, "aws:s3/bucketObjectv2:BucketObjectv2", key_field="key")
        wheel, constraints = objects["demo-build-wheel"], objects["demo-build-constraints"]
        assert wheel["bucket"] == constraints["bucket"] == "demo-storage-bucket-id"
        assert spec.build.wheel_sha256[:16] in wheel["key"]

    def test_every_machine_is_told_the_sha256_of_what_it_installs(self, spec, plan):
        for data in (node_user_data(plan), worker_user_data(plan)):
            assert checks.installs_the_build_by_hash(spec, data, "s3")
            assert spec.build.object_key("wheel") in data

    def test_machines_boot_after_the_objects_exist(self, plan):
        node = one(plan, "aws:ec2/instance:Instance", "demo-node-instance")
        group = one(plan, "aws:autoscaling/group:Group", "demo-workers-group")
        for machine in (node, group):
            assert {"demo-build-wheel", "demo-build-constraints"} <= set(machine.dependencies)

    def test_workers_may_read_the_bucket_and_not_write_it(self, plan):
        policy = one(plan, "aws:iam/rolePolicy:RolePolicy", "demo-worker-bucket").inputs["policy"]
        assert "s3:GetObject" in policy and "demo-storage-bucket" in policy
        assert "s3:PutObject" not in policy and "s3:DeleteObject" not in policy


class TestFirstBoot:
    def test_the_node_and_network_elastic_ips_wait_for_the_internet_gateway(self, plan):
        for name in ("demo-node-ip", "demo-network-ip"):
            assert "demo-net-igw" in one(plan, "aws:ec2/eip:Eip", name).dependencies
        assert "demo-net-igw" in one(plan, "aws:ec2/eip:Eip", "demo-net-nat").dependencies

    def test_caddy_is_given_the_elastic_ip_not_the_instance_metadata(self, plan):
        assert "GRID_PUBLIC_ADDRESS=192.0.2.10\n" in node_user_data(plan)
        assert "169.254.169.254" not in node_user_data(plan)


class TestChanges:
    """Issue 12, Measured 9: a changed user-data takes effect, on a new machine, never silently nothing."""

    def test_a_changed_user_data_replaces_the_node(self, plan):
        assert one(plan, "aws:ec2/instance:Instance", "demo-node-instance").inputs["userDataReplaceOnChange"] is True

    def test_a_new_launch_template_version_rolls_the_workers(self, plan):
        group = one(plan, "aws:autoscaling/group:Group", "demo-workers-group").inputs
        assert group["instanceRefresh"]["strategy"] == "Rolling"
        assert group["launchTemplate"]["version"] == "1"  # the template's latest version, not "$Latest"


class TestCost:
    def test_no_nat_gateway_while_there_are_no_workers(self):
        quiet = program.plan(settings(workers=0), redact=False)
        assert not of_type(quiet, "aws:ec2/natGateway:NatGateway")
        assert [r.name for r in of_type(quiet, "aws:ec2/eip:Eip")] == ["demo-node-ip"]

    def test_a_nat_gateway_with_workers(self, plan):
        assert [r.name for r in of_type(plan, "aws:ec2/natGateway:NatGateway")] == ["demo-net-nat"]


class TestDomain:
    """Issue 12, Measured 8: with --domain the ACME server must reach port 80; 443 stays restricted."""

    def test_port_80_is_open_to_everyone_for_acme_and_only_with_a_domain(self, plan):
        with_domain = program.plan(settings(domain="grid.example.org"), redact=False)
        everyone = [r for r in ingress_rules(with_domain) if r.get("cidrIpv4") == "0.0.0.0/0"]
        assert [(r["fromPort"], r["toPort"]) for r in everyone] == [(80, 80)]
        https = {r["cidrIpv4"] for r in ingress_rules(with_domain) if r["fromPort"] == 443}
        assert https == {OPERATOR_CIDR}
        assert not [r for r in ingress_rules(plan) if r["fromPort"] == 80]
