"""GCP defaults and names. No Pulumi import: the CLI and the provider read these freely."""

from __future__ import annotations

from providers.cloud import CloudSettings

CLOUD = "gcp"
DEFAULT_REGION = "europe-west1"
NODE_MACHINE_TYPE = "e2-standard-2"  # 2 vCPU, 8 GiB: the Node, its SQLite database and the Ray head
WORKER_MACHINE_TYPE = "c3-standard-4"  # 4 vCPU, 16 GiB per Worker
NETWORK_MACHINE_TYPE = "e2-small"
DATABASE_TIER = "db-custom-1-3840"
IMAGE = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"  # the image family: the current Ubuntu 24.04
CA_OBJECT = "gridctl/tls-root.crt"
NETWORK_CA_OBJECT = "gridctl/network-tls-root.crt"
SERVICES_RANGE = ("10.43.0.0", 20)  # private services access for Cloud SQL
CREDENTIAL_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN")
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_PROJECT", "CLOUDSDK_CORE_PROJECT")


def secret_id(settings: CloudSettings, key: str) -> str:
    return f"gridctl-{settings.name}-{key}"


def bucket_name(settings: CloudSettings) -> str:
    return settings.global_name("tensors", max_length=63)


def node_machine_type(settings: CloudSettings) -> str:
    return settings.node_instance_type or NODE_MACHINE_TYPE


def worker_machine_type(settings: CloudSettings) -> str:
    return settings.worker_instance_type or WORKER_MACHINE_TYPE


def network_tag(settings: CloudSettings, role: str) -> str:
    """Firewall rules select machines by these network tags."""
    return f"gridctl-{settings.name}-{role}"
