"""Azure defaults and names. No Pulumi import: the CLI and the provider read these freely."""

from __future__ import annotations

import re

from providers.cloud import CloudSettings

CLOUD = "azure"
DEFAULT_REGION = "westeurope"
NODE_VM_SIZE = "Standard_D2s_v5"  # 2 vCPU, 8 GiB: the Node, its SQLite database and the Ray head
WORKER_VM_SIZE = "Standard_F4s_v2"  # 4 vCPU, 8 GiB per Worker
NETWORK_VM_SIZE = "Standard_B2s"
DATABASE_SKU = ("Standard_B1ms", "Burstable")
IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
ADMIN_USER = "gridadmin"
CONTAINER = "tensors"
# Built-in role definition ids (the same in every tenant).
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
CREDENTIAL_ENV = ("AZURE_CLIENT_ID", "ARM_CLIENT_ID")
SUBSCRIPTION_ENV = ("AZURE_SUBSCRIPTION_ID", "ARM_SUBSCRIPTION_ID")


def resource_group(settings: CloudSettings) -> str:
    return f"gridctl-{settings.name}"


def storage_account(settings: CloudSettings) -> str:
    """3-24 lowercase letters and digits, globally unique."""
    return re.sub(r"[^a-z0-9]", "", f"gc{settings.name}")[:18] + settings.suffix


def vault_name(settings: CloudSettings) -> str:
    """3-24 letters, digits and hyphens, globally unique."""
    return f"gc-{settings.name}"[:17].rstrip("-") + "-" + settings.suffix


def vault_url(settings: CloudSettings) -> str:
    return f"https://{vault_name(settings)}.vault.azure.net"


def database_server(settings: CloudSettings) -> str:
    return settings.global_name("db", max_length=63)
