"""What the three clouds' Pulumi programs do alike; each ``providers/<cloud>/program.py`` keeps what is its own.

A program module offers ``build(settings)``, the inline program the StackRunner hands to the Automation API, and
``plan(settings)``, the same program run under Pulumi's mocks (:func:`offline_plan`). Alike in every cloud: the
cloud-init each machine boots (:class:`CloudInit`), the operator's build shipped to the bucket
(:func:`ship_build`), the secrets put in the cloud's store (:func:`stored_values`) and the stack outputs the
providers read (:func:`export_outputs`).

Imports Pulumi: only the runner and plan paths import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from providers import cloud
from providers.cloud import CloudSettings
from providers.cloud_provider import PROJECT
from providers.stack import DeclaredResource, MockCall
from providers.stack import plan as plan_offline
from templates.render import render

#: ``context(role, settings, public_address)``: the context a cloud renders ``role``'s cloud-init with.
MachineContext = Callable[[str, CloudSettings, str], dict[str, Any]]
#: ``put_file(resource_name, object_key, path)``: a file of the operator's machine as an object of the bucket.
PutFile = Callable[[str, str, str], pulumi.Resource]


@dataclass(frozen=True)
class CloudInit:
    """The cloud-init a cloud's machines boot, rendered from ``templates/cloud-init/<role>.yaml.j2``."""

    context: MachineContext

    def user_data(self, role: str, settings: CloudSettings, public_address: str = "") -> str:
        """The cloud-init a ``role`` machine boots with."""
        return render(f"cloud-init/{role}.yaml.j2", **self.context(role, settings, public_address))

    def user_data_output(self, role: str, settings: CloudSettings,
                         public_address: pulumi.Input[str]) -> pulumi.Output[str]:
        """The user-data of a machine whose public address the program allocates (Caddy serves on it)."""
        return pulumi.Output.from_input(public_address).apply(lambda address: self.user_data(role, settings, address))

    def server_user_data(self, role: str, settings: CloudSettings) -> Callable[[pulumi.Input[str]], pulumi.Output[str]]:
        """What a server component takes: its user-data as a function of the public address it allocates."""
        return lambda address: self.user_data_output(role, settings, address)


def ship_build(settings: CloudSettings, put_file: PutFile) -> list[pulumi.Resource]:
    """The operator's own gridctl (providers/build.py), the wheel and its constraints, as objects of the bucket:
    every machine installs them by hash, so every machine depends on them."""
    build = cloud.require_build(settings)
    return [put_file(f"{settings.name}-build-wheel", build.object_key("wheel"), build.wheel_path),
            put_file(f"{settings.name}-build-constraints", build.object_key("constraints"), build.constraints_path)]


def stored_values(settings: CloudSettings, database_url: pulumi.Input[str] | None) -> dict[str, pulumi.Input[str]]:
    """The values the program puts in the cloud's secret store: the generated secrets, and with a managed database
    its URL (known once the database exists)."""
    values: dict[str, pulumi.Input[str]] = dict(cloud.stored_secrets(settings))
    if database_url is not None:
        values[cloud.DATABASE_URL] = database_url
    return values


def export_outputs(
    settings: CloudSettings, *, node_public_ip: pulumi.Output[str], bucket: pulumi.Input[str],
    worker_group: pulumi.Input[str], database_address: pulumi.Input[str] | None = None,
    network_public_ip: pulumi.Output[str] | None = None, **cloud_outputs: pulumi.Input[Any]
) -> None:
    """The stack outputs every cloud's provider reads (``url``, ``bucket``, the build shipped, ...), then the
    cloud's own (``cloud_outputs``). ``database_address`` only with a managed database, ``network_url`` only with
    ``--network``."""
    build = cloud.require_build(settings)
    pulumi.export("url", node_public_ip.apply(lambda ip: f"https://{settings.domain or ip}"))
    pulumi.export("node_public_ip", node_public_ip)
    pulumi.export("bucket", bucket)
    pulumi.export("tls_root_object", cloud.CA_OBJECT)
    pulumi.export("workers", settings.workers)
    pulumi.export("worker_group", worker_group)
    pulumi.export("region", settings.region)
    pulumi.export("gridctl_version", build.version)
    pulumi.export("gridctl_wheel_sha256", build.wheel_sha256)
    for output, value in cloud_outputs.items():
        pulumi.export(output, value)
    if database_address is not None:
        pulumi.export("database_address", database_address)
    if network_public_ip is not None:
        pulumi.export("network_url", network_public_ip.apply(lambda ip: f"https://{ip}"))


def offline_plan(
    program: Callable[[], None], settings: CloudSettings, *, calls: Mapping[str, MockCall],
    computed: Callable[[str, str, Any], dict[str, Any]], redact: bool = True
) -> list[DeclaredResource]:
    """The resources ``program`` (built for ``settings``) declares, computed offline: ``calls`` answer its data
    sources, ``computed`` gives the outputs the cloud would compute; secret values are redacted unless ``redact``
    is false."""
    return plan_offline(program, project=PROJECT, stack=settings.name, calls=calls,
                        secret_values=settings.secrets.values(), redact=redact, computed=computed)
