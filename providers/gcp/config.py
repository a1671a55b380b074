"""GCP defaults and names. No Pulumi import: the CLI and the provider read these freely."""

from __future__ import annotations

import hashlib

from providers.cloud import CloudSettings

CLOUD = "gcp"
DEFAULT_REGION = "europe-west1"
NODE_MACHINE_TYPE = "e2-standard-2"  # 2 vCPU, 8 GiB: the Node, its SQLite database and the Ray head
WORKER_MACHINE_TYPE = "c3-standard-4"  # 4 vCPU, 16 GiB per Worker
NETWORK_MACHINE_TYPE = "e2-small"
DATABASE_TIER = "db-custom-1-3840"
IMAGE = "ubuntu-os-cloud/ubuntu-2404-lts-amd64"  # the image family: the current Ubuntu 24.04
SERVICES_RANGE = ("10.43.0.0", 20)  # private services access for Cloud SQL
CREDENTIAL_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIALS", "CLOUDSDK_AUTH_ACCESS_TOKEN")
PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_PROJECT", "CLOUDSDK_CORE_PROJECT")


def secret_id(settings: CloudSettings, key: str) -> str:
    return f"gridctl-{settings.name}-{key}"


def bucket_name(settings: CloudSettings) -> str:
    return settings.global_name("tensors", max_length=63)


SERVICE_ACCOUNT_ID_MAX = 30  # GCP: 6-30 characters, [a-z][-a-z0-9]*[a-z0-9]


def service_account_id(settings: CloudSettings, role: str) -> str:
    """The id of ``role``'s service account: ``gridctl-<name>-<role>`` when it fits in 30 characters; else the
    name is cut and a hash of the whole name keeps ids of different deployments apart, the role always last."""
    account_id = f"gridctl-{settings.name}-{role}"
    if len(account_id) <= SERVICE_ACCOUNT_ID_MAX:
        return account_id
    digest = hashlib.sha256(settings.name.encode()).hexdigest()[:6]
    room = SERVICE_ACCOUNT_ID_MAX - len(f"g--{digest}-{role}")
    return f"g-{settings.name[:room].rstrip('-')}-{digest}-{role}"


def network_tag(settings: CloudSettings, role: str) -> str:
    """Firewall rules select machines by these network tags."""
    return f"gridctl-{settings.name}-{role}"
