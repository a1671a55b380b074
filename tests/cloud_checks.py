"""Shared checks for the cloud programs' tests: settings to plan with, and questions about what a plan
declares (which resources take tags, which inputs differ between two plans)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from providers.build import MachineBuild
from providers.cloud import CloudSettings, DeploymentSecrets
from providers.stack import REDACTED, DeclaredResource

SECRETS = DeploymentSecrets(
    setup_token="gsetup_TEST-SETUP-TOKEN-0123456789",
    ray_token="TEST-RAY-TOKEN-abcdef0123456789",
    database_password="TEST-DB-PASSWORD-9876543210",
    network_setup_token="gsetup_TEST-NETWORK-SETUP-TOKEN-42",
)
OPERATOR_CIDR = "203.0.113.7/32"
WIDER_CIDR = "198.51.100.0/24"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKeyForTests operator@test"
THROWAWAY_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQThrowawayKeyForTests"

_PACKAGES = {"aws": "pulumi_aws", "gcp": "pulumi_gcp", "azure-native": "pulumi_azure_native"}


@cache
def fake_build() -> MachineBuild:
    """A stand-in for the operator's build (providers/build.py): two small files of fixed content, so the
    snapshots' digests never move. The real build is tested in tests/test_providers.py."""
    directory = Path(tempfile.gettempdir()) / "gridctl-test-build"
    directory.mkdir(exist_ok=True)
    wheel = directory / "gridctl-0.1.0.dev0-py3-none-any.whl"
    constraints = directory / "constraints.txt"
    wheel.write_bytes(b"not a real wheel: tests/cloud_checks.py\n")
    constraints.write_text("torch==2.13.0+cpu\n")
    return MachineBuild(version="0.1.0.dev0", wheel_path=str(wheel),
                        wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
                        constraints_path=str(constraints),
                        constraints_sha256=hashlib.sha256(constraints.read_bytes()).hexdigest())


def settings(**overrides: Any) -> CloudSettings:
    values: dict[str, Any] = {
        "name": "demo",
        "region": "eu-west-1",
        "allow_cidrs": (OPERATOR_CIDR,),
        "secrets": SECRETS,
        "suffix": "abc123",
        "workers": 2,
        "project": "demo-project",
        "admin_public_key": THROWAWAY_KEY,
        "build": fake_build(),
    }
    values.update(overrides)
    return CloudSettings(**values)


@cache
def resource_class(type_token: str) -> type | None:
    """The Python class of a cloud resource type token (``aws:ec2/vpc:Vpc`` -> ``pulumi_aws.ec2.Vpc``)."""
    package, module, class_name = type_token.split(":")
    if package not in _PACKAGES:
        return None
    module = module.split("/")[0]
    path = _PACKAGES[package] if module == "index" else f"{_PACKAGES[package]}.{module}"
    return getattr(importlib.import_module(path), class_name)


def takes(resource: DeclaredResource, argument: str) -> bool:
    cls = resource_class(resource.type)
    return cls is not None and argument in inspect.signature(cls._internal_init).parameters


def label(resource: DeclaredResource, field: str, key: str = "gridctl-deployment") -> str | None:
    """The value of ``key`` among a resource's tags or labels (a map, or AWS Auto Scaling's list of tags)."""
    tags = resource.inputs.get(field) or {}
    if isinstance(tags, list):
        tags = {tag["key"]: tag["value"] for tag in tags}
    return tags.get(key)


def cloud_resources(plan: list[DeclaredResource]) -> list[DeclaredResource]:
    """Resources a cloud provider manages: no components, no provider instances."""
    return [r for r in plan if r.custom and not r.type.startswith("pulumi:")]


def of_type(plan: list[DeclaredResource], type_token: str) -> list[DeclaredResource]:
    return [r for r in plan if r.type == type_token]


def one(plan: list[DeclaredResource], type_token: str, name: str) -> DeclaredResource:
    found = [r for r in plan if r.type == type_token and r.name == name]
    assert len(found) == 1, f"expected one {type_token} named {name}, found {len(found)}"
    return found[0]


def _plain(value: Any) -> Any:
    """A Pulumi asset as the file it names (its repr holds its address in memory)."""
    path = getattr(value, "path", None)
    return f"asset:{path}" if path is not None else str(value)


def text(resource: DeclaredResource) -> str:
    return json.dumps(resource.inputs, default=_plain, sort_keys=True)


def changed(before: list[DeclaredResource], after: list[DeclaredResource]) -> set[tuple[str, str]]:
    """(type, name) of every resource added, removed or with different inputs between two plans."""
    old = {(r.type, r.name): text(r) for r in before}
    new = {(r.type, r.name): text(r) for r in after}
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def secret_holders(plan: list[DeclaredResource]) -> set[tuple[str, str]]:
    """(type, name) of the resources whose inputs contain one of the generated secrets."""
    values = SECRETS.values()
    return {(r.type, r.name) for r in plan if any(value in text(r) for value in values)}


def plan_fixtures(program: ModuleType, region: str) -> tuple[Any, Any, Any]:
    """The module-scoped fixtures of a cloud program's tests, for ``spec, plan, ssh_plan = plan_fixtures(...)``:
    ``spec``, the settings of a deployment with everything on (managed database, --network, two Workers); ``plan``,
    what ``program`` declares for it, secrets unredacted; ``ssh_plan``, a deployment open to SSH from
    ``WIDER_CIDR`` whose API ingress is widened to it."""

    @pytest.fixture(scope="module")
    def spec() -> CloudSettings:
        return settings(region=region, managed_database=True, network=True)

    @pytest.fixture(scope="module")
    def plan(spec: CloudSettings) -> list[DeclaredResource]:
        return program.plan(spec, redact=False)

    @pytest.fixture(scope="module")
    def ssh_plan() -> list[DeclaredResource]:
        return program.plan(settings(region=region, ssh_cidrs=(WIDER_CIDR,), ssh_public_key=SSH_KEY,
                                     allow_cidrs=(OPERATOR_CIDR, WIDER_CIDR)), redact=False)

    return spec, plan, ssh_plan


def unlabelled(plan: list[DeclaredResource], field: str) -> tuple[int, list[str]]:
    """How many of a plan's resources take ``field`` (tags or labels), and the names of those whose ``field``
    does not name the deployment ``demo``."""
    labelable = [r for r in cloud_resources(plan) if takes(r, field)]
    return len(labelable), [r.name for r in labelable if label(r, field) != "demo"]


def build_objects(plan: list[DeclaredResource], spec: CloudSettings, object_type: str,
                  key_field: str) -> dict[str, dict[str, Any]]:
    """The inputs, by name, of the two objects ``plan`` ships the operator's build as (``object_type``, its key in
    ``key_field``), after checking they are the build's wheel and constraints under the build's keys."""
    build = spec.build
    assert build is not None
    objects = {r.name: r.inputs for r in of_type(plan, object_type)}
    assert set(objects) == {"demo-build-wheel", "demo-build-constraints"}
    assert objects["demo-build-wheel"][key_field] == build.object_key("wheel")
    assert objects["demo-build-wheel"]["source"].path == build.wheel_path
    assert objects["demo-build-constraints"]["source"].path == build.constraints_path
    return objects


def installs_the_build_by_hash(spec: CloudSettings, user_data: str, storage_extra: str) -> bool:
    """Whether a machine's user-data names the sha256 of the wheel and constraints it installs, and never has pip
    install gridctl (with its ``storage_extra``) by name from an index."""
    build = spec.build
    assert build is not None
    return (build.wheel_sha256 in user_data and build.constraints_sha256 in user_data
            and f'"gridctl[{storage_extra}]"' not in user_data and "bin/pip, install" not in user_data)


def store_entries(secret_type: str) -> set[tuple[str, str]]:
    """(type, name) of the entries of the cloud's secret store (``secret_type``) a deployment with a managed database
    and --network holds: the Node's setup token, Ray's token, the Network's setup token, the database's URL."""
    keys = ("setup-token", "ray-token", "network-setup-token", "database-url")
    return {(secret_type, f"demo-secrets-{key}") for key in keys}


def assert_the_plan_redacts_every_secret(program: ModuleType, spec: CloudSettings, secret_type: str) -> None:
    """``program``'s plan as ``gridctl deploy --plan`` shows it holds no secret value anywhere, and the Ray token's
    entry in the cloud's secret store (``secret_type``) reads as redacted."""
    redacted = program.plan(spec)
    assert not secret_holders(redacted)
    assert REDACTED in text(one(redacted, secret_type, "demo-secrets-ray-token"))
