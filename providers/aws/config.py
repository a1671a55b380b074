"""AWS defaults and names. No Pulumi import: the CLI and the provider read these freely."""

from __future__ import annotations

from providers.cloud import CloudSettings

CLOUD = "aws"
DEFAULT_REGION = "eu-west-1"
NODE_INSTANCE_TYPE = "t3.large"  # 2 vCPU, 8 GiB: the Node, its SQLite database and the Ray head
WORKER_INSTANCE_TYPE = "c6i.xlarge"  # 4 vCPU, 8 GiB per Worker
NETWORK_INSTANCE_TYPE = "t3.small"
DATABASE_INSTANCE_CLASS = "db.t4g.micro"
# Canonical publishes the current Ubuntu 24.04 image id under this public SSM parameter in every region.
UBUNTU_IMAGE_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def secret_prefix(settings: CloudSettings) -> str:
    return f"gridctl/{settings.name}"


def bucket_name(settings: CloudSettings) -> str:
    return settings.global_name("tensors", max_length=63)
